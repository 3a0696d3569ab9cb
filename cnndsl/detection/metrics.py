"""Detection metrics: Pascal VOC average precision and COCO mAP (bbox).

Both evaluators take COCO-style records:

* detections: ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}``;
* ground truths: ``{"image_id", "category_id", "bbox": [x, y, w, h]}`` with optional
  ``"iscrowd"`` (default 0) and ``"area"`` (default ``w * h``), or a whole COCO dataset dict
  ``{"images", "annotations", "categories"}``.

:func:`coco_evaluate` re-implements pycocotools' ``COCOeval(iouType="bbox")`` and matches its
``stats`` to floating-point precision.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import numpy as np

from ._arrays import as_boxes, to_numpy
from .boxes import box_iou, convert_boxes

# Built exactly as pycocotools does (linspace, not arange) so threshold comparisons agree.
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
COCO_MAX_DETECTIONS = (1, 10, 100)
COCO_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}

Record = Mapping[str, Any]
APMethod = Literal["all_point", "11_point"]


# --------------------------------------------------------------------------- VOC


def voc_ap(recall: Any, precision: Any, method: APMethod = "all_point") -> float:
    """Area under a precision/recall curve, Pascal VOC style.

    ``"all_point"`` (VOC2010+) integrates the monotone (right-to-left max) precision envelope
    over every recall change; ``"11_point"`` (VOC2007) averages the best precision at recall
    >= t for t = 0, 0.1, ..., 1 (thresholds built as k / 10).
    """
    rec = to_numpy(recall).reshape(-1)
    prec = to_numpy(precision).reshape(-1)
    if rec.shape != prec.shape:
        raise ValueError("recall and precision must have the same length")
    if method == "11_point":
        total = 0.0
        for t in np.linspace(0.0, 1.0, 11):
            above = prec[rec >= t]
            total += float(above.max()) if above.size else 0.0
        return total / 11.0
    if method != "all_point":
        raise ValueError(f"unknown AP method {method!r}")
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    step = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[step + 1] - mrec[step]) * mpre[step + 1]))


class VocResult(TypedDict):
    """Result of :func:`voc_map`."""

    map: float
    """Mean AP over categories with at least one non-difficult ground truth (-1 if none)."""
    ap: dict[Any, float]
    """AP per such category id."""


def voc_map(
    detections: Iterable[Record],
    ground_truths: Iterable[Record] | Mapping[str, Any],
    iou_threshold: float = 0.5,
    method: APMethod = "all_point",
) -> VocResult:
    """Pascal VOC mean average precision at one IoU threshold.

    Detections of a category are ranked by score over all images; each is a true positive
    when its best-overlapping ground truth in the same image has IoU > ``iou_threshold`` and
    is not already taken, otherwise a false positive. Ground truths flagged ``"difficult"``
    (or ``"iscrowd"``) are not counted, and detections matched to them are neither. IoU uses
    continuous coordinates (no VOC-devkit "+1" pixel convention).
    """
    gts, _, cat_ids = _parse_ground_truths(ground_truths)
    gt_by_cat: dict[Any, dict[Any, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for g in gts:
        gt_by_cat[g["category_id"]][g["image_id"]].append(g)
    dt_by_cat: dict[Any, list[Record]] = defaultdict(list)
    for d in detections:
        dt_by_cat[d["category_id"]].append(d)

    aps: dict[Any, float] = {}
    for cat in cat_ids:
        boxes: dict[Any, np.ndarray] = {}
        difficult: dict[Any, np.ndarray] = {}
        taken: dict[Any, np.ndarray] = {}
        num_pos = 0
        for img, anns in gt_by_cat[cat].items():
            boxes[img] = convert_boxes([a["bbox"] for a in anns], "xywh", "xyxy")
            difficult[img] = np.array(
                [bool(a.get("difficult", 0) or a.get("iscrowd", 0)) for a in anns]
            )
            taken[img] = np.zeros(len(anns), dtype=bool)
            num_pos += int((~difficult[img]).sum())
        if num_pos == 0:
            continue
        dts = dt_by_cat.get(cat, [])
        order = np.argsort([-float(d["score"]) for d in dts], kind="stable")
        tp = np.zeros(len(dts))
        fp = np.zeros(len(dts))
        for rank, idx in enumerate(order):
            d = dts[idx]
            img = d["image_id"]
            if img not in boxes:
                fp[rank] = 1
                continue
            det = convert_boxes(d["bbox"], "xywh", "xyxy")
            ious = box_iou(det, boxes[img])[0]
            best = int(np.argmax(ious))
            if ious[best] <= iou_threshold:
                fp[rank] = 1
            elif difficult[img][best]:
                continue
            elif taken[img][best]:
                fp[rank] = 1
            else:
                taken[img][best] = True
                tp[rank] = 1
        tp_cum, fp_cum = np.cumsum(tp), np.cumsum(fp)
        recall = tp_cum / num_pos
        precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
        aps[cat] = voc_ap(recall, precision, method)
    mean = float(np.mean(list(aps.values()))) if aps else -1.0
    return VocResult(map=mean, ap=aps)


# --------------------------------------------------------------------------- COCO


def _parse_ground_truths(
    ground_truths: Iterable[Record] | Mapping[str, Any],
) -> tuple[list[Record], list[Any] | None, list[Any]]:
    """Split ground truths into (annotations, image ids or None, sorted category ids)."""
    if isinstance(ground_truths, Mapping):
        anns = list(ground_truths.get("annotations", []))
        images = ground_truths.get("images")
        image_ids = [img["id"] for img in images] if images is not None else None
        categories = ground_truths.get("categories")
        if categories is not None:
            return anns, image_ids, sorted({c["id"] for c in categories})
        return anns, image_ids, sorted({a["category_id"] for a in anns})
    anns = list(ground_truths)
    return anns, None, sorted({a["category_id"] for a in anns})


def _coco_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """IoU of xywh boxes (D, G) in pycocotools' float operation order; crowd divides by dt area."""
    w = np.minimum(dt[:, None, 2] + dt[:, None, 0], gt[None, :, 2] + gt[None, :, 0]) - np.maximum(
        dt[:, None, 0], gt[None, :, 0]
    )
    h = np.minimum(dt[:, None, 3] + dt[:, None, 1], gt[None, :, 3] + gt[None, :, 1]) - np.maximum(
        dt[:, None, 1], gt[None, :, 1]
    )
    inter = w * h
    dt_area = (dt[:, 2] * dt[:, 3])[:, None]
    gt_area = (gt[:, 2] * gt[:, 3])[None, :]
    union = np.where(crowd[None, :], dt_area, dt_area + gt_area - inter)
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=(w > 0) & (h > 0))
    return out


def _coco_match(
    ious: np.ndarray, gt_ignore: np.ndarray, gt_crowd: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy COCO matching of score-sorted detections to gts sorted non-ignored first.

    Returns (matched, matched_to_ignored), both (T, D) bool. For each threshold a detection
    takes the available gt with the highest IoU >= threshold (the last one on ties, as
    pycocotools' scan does), preferring non-ignored gts; crowd gts stay available after a
    match.
    """
    num_dt, num_gt = ious.shape
    num_thr = thresholds.shape[0]
    matched = np.zeros((num_thr, num_dt), dtype=bool)
    to_ignored = np.zeros((num_thr, num_dt), dtype=bool)
    if num_dt == 0 or num_gt == 0:
        return matched, to_ignored
    gt_taken = np.zeros((num_thr, num_gt), dtype=bool)
    limit = np.minimum(thresholds, 1 - 1e-10)[:, None]
    rows = np.arange(num_thr)
    for d in range(num_dt):
        iou = ious[d][None, :]
        ok = (~gt_taken | gt_crowd[None, :]) & (iou >= limit)
        regular = ok & ~gt_ignore[None, :]
        # An ignored gt can only absorb a detection that found no regular gt.
        cand = np.where(regular.any(axis=1, keepdims=True), regular, ok)
        found = cand.any(axis=1)
        if not found.any():
            continue
        scored = np.where(cand, iou, -np.inf)
        best = num_gt - 1 - np.argmax(scored[:, ::-1], axis=1)
        matched[:, d] = found
        to_ignored[:, d] = found & gt_ignore[best]
        gt_taken[rows[found], best[found]] = True
    return matched, to_ignored


@dataclass
class _ImageCatEval:
    """Per (image, category) matching results for every area range."""

    scores: np.ndarray  # (D,) sorted decreasing, truncated to the largest max-detections
    matched: np.ndarray  # (A, T, D) bool
    ignored: np.ndarray  # (A, T, D) bool: matched to an ignored gt, or unmatched off-range
    num_gt: np.ndarray  # (A,) number of non-ignored gts


def _evaluate_image_cat(
    gts: list[Record], dts: list[Record], area_ranges: np.ndarray, max_det: int
) -> _ImageCatEval:
    """Match one image's detections of one category against its ground truths."""
    gt_boxes = as_boxes([g["bbox"] for g in gts]).reshape(-1, 4)
    gt_crowd = np.array([bool(g.get("iscrowd", 0)) for g in gts], dtype=bool)
    gt_area = np.array(
        [float(g["area"]) if "area" in g else float(g["bbox"][2]) * g["bbox"][3] for g in gts]
    )
    scores = np.array([float(d["score"]) for d in dts])
    order = np.argsort(-scores, kind="stable")[:max_det]
    dt_boxes = as_boxes([dts[i]["bbox"] for i in order]).reshape(-1, 4)
    scores = scores[order]
    dt_area = dt_boxes[:, 2] * dt_boxes[:, 3]
    ious = _coco_iou(dt_boxes, gt_boxes, gt_crowd)

    n_area, n_thr = area_ranges.shape[0], COCO_IOU_THRESHOLDS.shape[0]
    matched = np.zeros((n_area, n_thr, len(order)), dtype=bool)
    ignored = np.zeros_like(matched)
    num_gt = np.zeros(n_area, dtype=np.int64)
    for a, (lo, hi) in enumerate(area_ranges):
        gt_ignore = gt_crowd | (gt_area < lo) | (gt_area > hi)
        gt_order = np.argsort(gt_ignore, kind="stable")
        m, to_ig = _coco_match(
            ious[:, gt_order], gt_ignore[gt_order], gt_crowd[gt_order], COCO_IOU_THRESHOLDS
        )
        off_range = (dt_area < lo) | (dt_area > hi)
        matched[a] = m
        ignored[a] = to_ig | (~m & off_range[None, :])
        num_gt[a] = int((~gt_ignore).sum())
    return _ImageCatEval(scores, matched, ignored, num_gt)


@dataclass
class CocoEvalResult:
    """Accumulated COCO evaluation, laid out like pycocotools' ``COCOeval.eval``."""

    precision: np.ndarray
    """(T, R, K, A, M) interpolated precision; -1 where a category has no ground truth."""
    recall: np.ndarray
    """(T, K, A, M) final recall; -1 where a category has no ground truth."""
    image_ids: list[Any]
    category_ids: list[Any]
    stats: dict[str, float]
    """The 12 COCO summary numbers, see :func:`coco_map`."""

    def per_category_ap(self) -> dict[Any, float]:
        """AP@[.5:.95] (all areas, 100 detections) per category id; -1 without ground truth."""
        prec = self.precision[:, :, :, 0, -1]
        return {cat: _mean_valid(prec[:, :, k]) for k, cat in enumerate(self.category_ids)}


def _mean_valid(values: np.ndarray) -> float:
    """Mean of entries > -1, or -1 when there are none (pycocotools' summary rule)."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def _accumulate(
    evals: Sequence[_ImageCatEval], max_dets: Sequence[int], n_area: int
) -> tuple[np.ndarray, np.ndarray]:
    """Precision (T, R, A, M) and recall (T, A, M) of one category over its images."""
    n_thr, n_rec = COCO_IOU_THRESHOLDS.shape[0], COCO_RECALL_THRESHOLDS.shape[0]
    precision = -np.ones((n_thr, n_rec, n_area, len(max_dets)))
    recall = -np.ones((n_thr, n_area, len(max_dets)))
    if not evals:
        return precision, recall
    num_gts = [int(sum(e.num_gt[a] for e in evals)) for a in range(n_area)]
    for m, max_det in enumerate(max_dets):
        scores = np.concatenate([e.scores[:max_det] for e in evals])
        # Ties across images keep image order, like pycocotools' mergesort.
        order = np.argsort(-scores, kind="stable")
        for a, num_gt in enumerate(num_gts):
            if num_gt == 0:
                continue
            matched = np.concatenate([e.matched[a][:, :max_det] for e in evals], axis=1)[:, order]
            ignored = np.concatenate([e.ignored[a][:, :max_det] for e in evals], axis=1)[:, order]
            tp = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
            fp = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
            num_dt = tp.shape[1]
            rc = tp / num_gt
            pr = tp / (fp + tp + np.spacing(1))
            recall[:, a, m] = rc[:, -1] if num_dt else 0.0
            # Precision envelope: best precision at any recall >= this one.
            pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            for t in range(n_thr):
                idx = np.searchsorted(rc[t], COCO_RECALL_THRESHOLDS, side="left")
                reached = idx < num_dt
                q = np.zeros(n_rec)
                q[reached] = pr[t, idx[reached]]
                precision[t, :, a, m] = q
    return precision, recall


def coco_evaluate(
    detections: Iterable[Record], ground_truths: Iterable[Record] | Mapping[str, Any]
) -> CocoEvalResult:
    """COCO bbox evaluation equivalent to pycocotools' ``COCOeval`` evaluate + accumulate.

    Images are those of the dataset dict's ``"images"`` or else every image id seen in the
    ground truths or detections; categories are the dataset's ``"categories"`` or else those of
    the ground truths (detections of other categories are dropped, as pycocotools does).
    A match is recorded whatever the annotation ``id`` (pycocotools miscounts gts whose id is
    0). Raises ``ValueError`` for detections on images outside an explicit image list.
    """
    gts, image_ids, cat_ids = _parse_ground_truths(ground_truths)
    dets = list(detections)
    if image_ids is None:
        image_ids = sorted({g["image_id"] for g in gts} | {d["image_id"] for d in dets})
    else:
        image_ids = sorted(set(image_ids))
        unknown = {d["image_id"] for d in dets} - set(image_ids)
        if unknown:
            raise ValueError(f"detections reference images not in the dataset: {unknown}")

    gt_groups: dict[tuple[Hashable, Hashable], list[Record]] = defaultdict(list)
    for g in gts:
        gt_groups[g["image_id"], g["category_id"]].append(g)
    dt_groups: dict[tuple[Hashable, Hashable], list[Record]] = defaultdict(list)
    for d in dets:
        dt_groups[d["image_id"], d["category_id"]].append(d)

    area_ranges = np.array(list(COCO_AREA_RANGES.values()))
    max_dets = list(COCO_MAX_DETECTIONS)
    n_thr, n_rec = COCO_IOU_THRESHOLDS.shape[0], COCO_RECALL_THRESHOLDS.shape[0]
    shape = (n_thr, n_rec, len(cat_ids), len(area_ranges), len(max_dets))
    precision = -np.ones(shape)
    recall = -np.ones((n_thr, len(cat_ids), len(area_ranges), len(max_dets)))
    for k, cat in enumerate(cat_ids):
        evals = [
            _evaluate_image_cat(
                gt_groups.get((img, cat), []),
                dt_groups.get((img, cat), []),
                area_ranges,
                max_dets[-1],
            )
            for img in image_ids
            if (img, cat) in gt_groups or (img, cat) in dt_groups
        ]
        precision[:, :, k], recall[:, k] = _accumulate(evals, max_dets, len(area_ranges))
    stats = _summarize(precision, recall)
    return CocoEvalResult(precision, recall, list(image_ids), list(cat_ids), stats)


def _summarize(precision: np.ndarray, recall: np.ndarray) -> dict[str, float]:
    """pycocotools' 12 summary numbers from the accumulated arrays."""
    areas = list(COCO_AREA_RANGES)
    last = len(COCO_MAX_DETECTIONS) - 1

    def ap(iou: float | None = None, area: str = "all") -> float:
        """Mean precision at the largest max-detections, over valid categories."""
        p = precision if iou is None else precision[np.flatnonzero(iou == COCO_IOU_THRESHOLDS)]
        return _mean_valid(p[:, :, :, areas.index(area), last])

    def ar(max_det_index: int = last, area: str = "all") -> float:
        """Mean final recall over IoU thresholds and valid categories."""
        return _mean_valid(recall[:, :, areas.index(area), max_det_index])

    return {
        "map": ap(),
        "map50": ap(iou=0.5),
        "map75": ap(iou=0.75),
        "map_small": ap(area="small"),
        "map_medium": ap(area="medium"),
        "map_large": ap(area="large"),
        "mar_1": ar(0),
        "mar_10": ar(1),
        "mar_100": ar(2),
        "mar_small": ar(area="small"),
        "mar_medium": ar(area="medium"),
        "mar_large": ar(area="large"),
    }


COCO_STAT_KEYS = (
    "map",
    "map50",
    "map75",
    "map_small",
    "map_medium",
    "map_large",
    "mar_1",
    "mar_10",
    "mar_100",
    "mar_small",
    "mar_medium",
    "mar_large",
)
"""Keys of :func:`coco_map`, in the order of pycocotools' ``COCOeval.stats``."""


def coco_map(
    detections: Iterable[Record], ground_truths: Iterable[Record] | Mapping[str, Any]
) -> dict[str, float]:
    """COCO bbox summary metrics, equal to pycocotools' ``COCOeval.stats`` (keys in order).

    Keys: ``map`` (AP@[.5:.95]), ``map50``, ``map75``, ``map_small/medium/large``,
    ``mar_1/10/100`` and ``mar_small/medium/large``; -1 where no category has ground truth.
    """
    return coco_evaluate(detections, ground_truths).stats


def detections_to_coco(
    detections: Sequence[Any],
    image_ids: Sequence[Any],
    category_ids: Sequence[Any] | None = None,
) -> list[dict[str, Any]]:
    """COCO result records from per-image (boxes xyxy, scores, classes) triples.

    Accepts the output of :func:`cnndsl.detection.nms.postprocess`; class index ``c`` maps to
    ``category_ids[c]`` (or ``c`` itself when no mapping is given).
    """
    if len(detections) != len(image_ids):
        raise ValueError("need one image id per image of detections")
    records: list[dict[str, Any]] = []
    for img, (boxes, scores, classes) in zip(image_ids, detections, strict=True):
        xywh = convert_boxes(boxes, "xyxy", "xywh").reshape(-1, 4)
        cls = to_numpy(classes, np.int64).reshape(-1)
        for box, score, c in zip(xywh, to_numpy(scores).reshape(-1), cls, strict=True):
            records.append(
                {
                    "image_id": img,
                    "category_id": category_ids[int(c)] if category_ids is not None else int(c),
                    "bbox": [float(v) for v in box],
                    "score": float(score),
                }
            )
    return records
