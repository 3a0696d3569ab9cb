"""NMS against a brute-force reference, plus YOLO post-processing."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnndsl.detection import Detections, YoloOutput, batched_nms, nms, postprocess


def _iou_py(a: list[float], b: list[float]) -> float:
    """Scalar IoU with the same float operations as the vectorised code."""
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = w * h
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def reference_nms(
    boxes: list[list[float]], scores: list[float], thr: float, classes: list[int] | None = None
) -> list[int]:
    """Textbook greedy NMS, one pair at a time."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    suppressed = [False] * len(scores)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        for j in order[pos + 1 :]:
            same_class = classes is None or classes[i] == classes[j]
            if same_class and _iou_py(boxes[i], boxes[j]) > thr:
                suppressed[j] = True
    return keep


# Small integer grids make duplicate boxes and exact IoU == threshold cases common.
_coord = st.one_of(st.integers(0, 12).map(float), st.floats(0, 12, allow_nan=False))
_size = st.one_of(st.integers(0, 6).map(float), st.floats(0, 6, allow_nan=False))
_box = st.tuples(_coord, _coord, _size, _size).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]])
_score = st.one_of(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(0, 1))
_threshold = st.one_of(st.sampled_from([0.0, 1 / 3, 0.5, 0.7, 1.0]), st.floats(0, 1))


NmsCase = tuple[list[list[float]], list[float], list[int], float]


@st.composite
def nms_case(draw: st.DrawFn) -> NmsCase:
    boxes = draw(st.lists(_box, max_size=40))
    # Explicit copies so duplicate boxes (with equal or different scores) always occur.
    for src in draw(st.lists(st.integers(0, max(len(boxes) - 1, 0)), max_size=5)):
        if boxes:
            boxes.append(list(boxes[src]))
    scores = draw(st.lists(_score, min_size=len(boxes), max_size=len(boxes)))
    classes = draw(st.lists(st.integers(0, 2), min_size=len(boxes), max_size=len(boxes)))
    return boxes, scores, classes, draw(_threshold)


@settings(max_examples=300, deadline=None)
@given(nms_case())
def test_nms_matches_reference(case: NmsCase) -> None:
    boxes, scores, classes, thr = case
    arr = np.array(boxes, dtype=float).reshape(-1, 4)
    kept = nms(arr, scores, thr)
    assert kept.dtype == np.int64
    assert kept.tolist() == reference_nms(boxes, scores, thr)
    kept_cls = nms(arr, scores, thr, classes=classes)
    assert kept_cls.dtype == np.int64
    assert kept_cls.tolist() == reference_nms(boxes, scores, thr, classes)
    assert batched_nms(arr, scores, classes, thr).tolist() == kept_cls.tolist()


def test_nms_ties_keep_lower_index() -> None:
    boxes = np.array([[0, 0, 10, 10]] * 3, dtype=float)
    assert nms(boxes, [0.5, 0.5, 0.5], 0.5).tolist() == [0]
    assert nms(boxes, [0.5, 0.9, 0.9], 0.5).tolist() == [1]
    # Equal-score survivors are listed lower index first.
    far = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]], dtype=float)
    assert nms(far, [0.3, 0.7, 0.7], 0.5).tolist() == [1, 2, 0]


def test_nms_threshold_is_strict() -> None:
    # IoU of these two boxes is exactly 0.5: kept at threshold 0.5, suppressed below it.
    boxes = np.array([[0, 0, 3, 1], [1, 0, 4, 1]], dtype=float)
    assert nms(boxes, [0.9, 0.8], 0.5).tolist() == [0, 1]
    assert nms(boxes, [0.9, 0.8], 0.49).tolist() == [0]


def test_nms_empty_and_classes() -> None:
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).dtype == np.int64
    assert nms([], [], 0.5).shape == (0,)
    assert nms([], [], 0.5, classes=[]).shape == (0,)
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    assert nms(boxes, [0.9, 0.8], 0.5, classes=[0, 1]).tolist() == [0, 1]
    with pytest.raises(ValueError):
        nms(boxes, [0.9], 0.5)


def test_nms_accepts_torch() -> None:
    torch = pytest.importorskip("torch")
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], requires_grad=True)
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]


def _decoded(boxes: list[list[float]], obj: list[float], probs: list[list[float]]) -> YoloOutput:
    return YoloOutput(np.array([boxes], float), np.array([obj], float), np.array([probs], float))


def test_postprocess_thresholds_nms_and_limit() -> None:
    decoded = _decoded(
        [[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60], [70, 70, 80, 80]],
        [0.9, 0.8, 0.9, 0.5, 0.1],
        [[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [1.0, 0.0], [1.0, 0.0]],
    )
    (det,) = postprocess(decoded, score_threshold=0.3, iou_threshold=0.5)
    assert isinstance(det, Detections)
    # Slot 1 is suppressed by slot 0 (same class); slot 2 survives (other class); slot 4 fails
    # the score threshold.
    np.testing.assert_allclose(det.scores, [0.81, 0.72, 0.5])
    assert det.classes.tolist() == [0, 1, 0]
    np.testing.assert_allclose(det.boxes[2], [50, 50, 60, 60])
    (agnostic,) = postprocess(decoded, 0.3, 0.5, class_agnostic=True)
    assert agnostic.classes.tolist() == [0, 0]
    (top1,) = postprocess(decoded, 0.3, 0.5, max_detections=1)
    assert top1.scores.tolist() == pytest.approx([0.81])


def test_postprocess_multi_label_and_empty() -> None:
    decoded = _decoded([[0, 0, 10, 10]], [1.0], [[0.6, 0.7]])
    (single,) = postprocess(decoded, 0.5, 0.5)
    assert single.classes.tolist() == [1]
    (multi,) = postprocess(decoded, 0.5, 0.5, multi_label=True)
    assert multi.classes.tolist() == [1, 0]
    (none,) = postprocess(decoded, 0.95, 0.5)
    assert none.boxes.shape == (0, 4) and none.classes.dtype == np.int64
