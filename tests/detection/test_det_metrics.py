"""COCO / VOC metrics: equality with pycocotools and hand-computed AP values."""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any

import numpy as np
import pytest

from cnndsl.detection import (
    COCO_STAT_KEYS,
    Detections,
    coco_evaluate,
    coco_map,
    detections_to_coco,
    voc_ap,
    voc_map,
)

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def _pycoco(dataset: dict[str, Any], dets: list[dict[str, Any]]) -> COCOeval:
    """Run pycocotools on deep copies (it mutates its inputs), silencing its printing."""
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(dataset)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(dets))
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def _random_box(rng: np.random.Generator, img_size: float) -> list[float]:
    # Log-uniform sizes so that small, medium and large objects all occur.
    w, h = np.exp(rng.uniform(np.log(4), np.log(300), size=2))
    x, y = rng.uniform(0, img_size - min(w, img_size - 1), size=2)
    if rng.random() < 0.3:  # integer boxes make exact IoU ties between boxes likely
        return [float(round(x)), float(round(y)), float(max(1, round(w))), float(max(1, round(h)))]
    return [float(x), float(y), float(w), float(h)]


def _jitter(rng: np.random.Generator, box: list[float], scale: float) -> list[float]:
    x, y, w, h = box
    dx, dy = rng.normal(0, scale, size=2) * np.array([w, h])
    sw, sh = np.exp(rng.normal(0, scale, size=2))
    return [x + dx, y + dy, w * sw, h * sh]


def make_case(seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A random COCO dataset and detections exercising the evaluator's corner cases."""
    rng = np.random.default_rng(seed)
    n_images = int(rng.integers(6, 12))
    # Category 5 has no ground truth (but detections); category 4 has no detections.
    categories = [{"id": c, "name": f"c{c}"} for c in (1, 2, 3, 4, 5)]
    images = [{"id": 100 + i, "width": 640, "height": 480} for i in range(n_images)]
    anns: list[dict[str, Any]] = []
    dets: list[dict[str, Any]] = []
    score_pool = np.round(rng.uniform(0, 1, size=12), 2)  # few distinct scores -> many ties
    for i, img in enumerate(images):
        img_id = img["id"]
        # Some images (always the second) have no ground truth at all.
        n_gt = 0 if i == 1 or rng.random() < 0.2 else int(rng.integers(1, 9))
        for _ in range(n_gt):
            cat = int(rng.choice([1, 2, 3, 4]))
            box = _random_box(rng, 480)
            crowd = int(rng.random() < 0.1)
            ann = {"image_id": img_id, "category_id": cat, "bbox": box, "iscrowd": crowd}
            ann["area"] = box[2] * box[3]
            anns.append(ann)
            if rng.random() < 0.1:  # duplicate gt: equal IoUs exercise the tie rule
                anns.append(dict(ann))
            if cat == 4:
                continue
            for _ in range(int(rng.integers(0, 4))):
                dets.append(
                    {
                        "image_id": img_id,
                        "category_id": cat,
                        "bbox": _jitter(rng, box, float(rng.choice([0.02, 0.1, 0.3]))),
                        "score": float(rng.choice(score_pool)),
                    }
                )
        for _ in range(int(rng.integers(0, 6))):  # false positives, incl. category 5
            dets.append(
                {
                    "image_id": img_id,
                    "category_id": int(rng.choice([1, 2, 3, 5])),
                    "bbox": _random_box(rng, 480),
                    "score": float(rng.uniform(0, 1)),
                }
            )
    # A detection on the image without ground truth, whatever the random draws above gave.
    dets.append({"image_id": 101, "category_id": 2, "bbox": [1.0, 2, 30, 40], "score": 0.95})
    # One crowded image: more than 100 detections of one class, so maxDets truncation bites.
    crowded = images[0]["id"]
    for _ in range(130):
        dets.append(
            {
                "image_id": crowded,
                "category_id": 1,
                "bbox": _random_box(rng, 480),
                "score": float(rng.choice(score_pool)),
            }
        )
    for i, ann in enumerate(anns):
        ann["id"] = i + 1
    return {"images": images, "annotations": anns, "categories": categories}, dets


@pytest.mark.parametrize("seed", range(6))
def test_coco_matches_pycocotools(seed: int) -> None:
    dataset, dets = make_case(seed)
    ref = _pycoco(dataset, dets)
    ours = coco_evaluate(dets, dataset)
    np.testing.assert_allclose(ours.precision, ref.eval["precision"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(ours.recall, ref.eval["recall"], atol=1e-12, rtol=0)
    stats = [ours.stats[k] for k in COCO_STAT_KEYS]
    np.testing.assert_allclose(stats, ref.stats, atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", [10, 11])
def test_coco_map_accepts_annotation_list(seed: int) -> None:
    dataset, dets = make_case(seed)
    # The list form infers images/categories; "area" omitted must default to w * h.
    anns = [{k: v for k, v in a.items() if k != "area"} for a in dataset["annotations"]]
    ref = _pycoco(dataset, dets)
    ours = coco_map(dets, anns)
    assert list(ours) == list(COCO_STAT_KEYS)
    np.testing.assert_allclose([ours[k] for k in COCO_STAT_KEYS], ref.stats, atol=1e-6)


def _crafted_case() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Hand-made situations where pycocotools' matching order rules change the result."""
    anns: list[dict[str, Any]] = [
        # Image 1: equal IoU (2/3) with two gts; pycocotools keeps the *last* one, which
        # leaves gt 1 free for the second detection.
        {"image_id": 1, "category_id": 1, "bbox": [2, 0, 10, 10]},
        {"image_id": 1, "category_id": 1, "bbox": [-2, 0, 10, 10]},
        # Image 2: the detection overlaps a crowd region more than a regular gt; the regular
        # gt must win (regular gts are preferred over ignored ones).
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 100, 100], "iscrowd": 1},
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 14, 10]},
        # Image 3: a small-area gt next to a medium one, seen through each area range.
        {"image_id": 3, "category_id": 1, "bbox": [0, 0, 20, 20]},
        {"image_id": 3, "category_id": 1, "bbox": [0, 0, 40, 40]},
    ]
    for i, a in enumerate(anns):
        a.setdefault("iscrowd", 0)
        a["area"] = a["bbox"][2] * a["bbox"][3]
        a["id"] = i + 1
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [4, 0, 10, 10], "score": 0.8},
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.7},
        {"image_id": 2, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.6},
        {"image_id": 3, "category_id": 1, "bbox": [0, 0, 30, 30], "score": 0.5},
        {"image_id": 3, "category_id": 1, "bbox": [0, 0, 20, 21], "score": 0.5},
    ]
    dataset = {
        "images": [{"id": i} for i in (1, 2, 3)],
        "annotations": anns,
        "categories": [{"id": 1}],
    }
    return dataset, dets


def test_coco_crafted_tie_and_crowd_rules() -> None:
    dataset, dets = _crafted_case()
    ref = _pycoco(dataset, dets)
    ours = coco_evaluate(dets, dataset)
    np.testing.assert_allclose(ours.precision, ref.eval["precision"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(ours.recall, ref.eval["recall"], atol=1e-12, rtol=0)
    np.testing.assert_allclose([ours.stats[k] for k in COCO_STAT_KEYS], ref.stats, atol=1e-6)


def test_coco_perfect_and_empty() -> None:
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 40]},
        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 200, 150]},
    ]
    perfect = [dict(a, score=0.9) for a in anns]
    stats = coco_map(perfect, anns)
    assert stats["map"] == pytest.approx(1.0)
    assert stats["map_small"] == -1.0  # no small objects at all
    none = coco_map([], anns)
    assert none["map"] == 0.0 and none["mar_100"] == 0.0


def test_coco_rejects_detections_on_unknown_images() -> None:
    dataset = {"images": [{"id": 1}], "annotations": [], "categories": [{"id": 1}]}
    det = {"image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}
    with pytest.raises(ValueError, match="not in the dataset"):
        coco_evaluate([det], dataset)


def test_per_category_ap() -> None:
    dataset, dets = make_case(3)
    per_cat = coco_evaluate(dets, dataset).per_category_ap()
    assert per_cat[5] == -1.0  # no ground truth
    assert per_cat[4] == 0.0  # ground truth but no detections


def test_detections_to_coco_roundtrip() -> None:
    dets = [
        Detections(np.array([[10.0, 20.0, 30.0, 60.0]]), np.array([0.5]), np.array([1])),
        Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64)),
    ]
    records = detections_to_coco(dets, image_ids=[7, 8], category_ids=[11, 12])
    assert records == [{"image_id": 7, "category_id": 12, "bbox": [10, 20, 20, 40], "score": 0.5}]


# --------------------------------------------------------------------------- VOC


def test_voc_ap_hand_computed() -> None:
    # 4 ground truths; ranked detections: TP, FP, TP, FP, TP.
    tp = np.array([1, 0, 1, 0, 1], dtype=float)
    rec = np.cumsum(tp) / 4  # .25 .25 .5 .5 .75
    prec = np.cumsum(tp) / np.arange(1, 6)  # 1 .5 .6667 .5 .6
    # Envelope: 1 up to recall .25, 2/3 up to .5, .6 up to .75, 0 beyond.
    assert voc_ap(rec, prec, "all_point") == pytest.approx(0.25 * 1 + 0.25 * (2 / 3) + 0.25 * 0.6)
    # Recall thresholds 0..0.2 -> 1, 0.3..0.5 -> 2/3, 0.6..0.7 -> 0.6, 0.8..1.0 -> 0.
    expected_11 = (3 * 1 + 3 * (2 / 3) + 2 * 0.6) / 11
    assert voc_ap(rec, prec, "11_point") == pytest.approx(expected_11)


def test_voc_ap_edge_cases() -> None:
    assert voc_ap([], [], "all_point") == 0.0
    assert voc_ap([], [], "11_point") == 0.0
    assert voc_ap([1.0], [1.0]) == pytest.approx(1.0)
    assert voc_ap([1.0], [1.0], "11_point") == pytest.approx(1.0)
    with pytest.raises(ValueError):
        voc_ap([1.0], [1.0], "bogus")  # type: ignore[arg-type]


def test_voc_map_small_case() -> None:
    gts = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]},
        {"image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 10]},
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "difficult": 1},
        {"image_id": 2, "category_id": 2, "bbox": [50, 50, 10, 10]},
    ]
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},  # TP
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.8},  # duplicate: FP
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.7},  # difficult
        {"image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 10], "score": 0.6},  # TP
        {"image_id": 3, "category_id": 2, "bbox": [50, 50, 10, 10], "score": 0.5},  # wrong image
    ]
    result = voc_map(dets, gts)
    # Class 1: TP, FP, TP -> envelope precision 2/3 reaching recall 1 after 1.0 at recall .5.
    assert result["ap"][1] == pytest.approx(0.5 * 1 + 0.5 * (2 / 3))
    assert result["ap"][2] == 0.0
    assert result["map"] == pytest.approx((0.5 + 1 / 3) / 2)
