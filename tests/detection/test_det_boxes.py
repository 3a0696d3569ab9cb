"""Box formats, IoU properties and the YOLO encoding."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cnndsl.detection import (
    BoxFormat,
    box_area,
    box_iou,
    build_yolo_targets,
    convert_boxes,
    decode_yolo,
    encode_yolo,
    generalized_box_iou,
    yolo_flatten,
    yolo_unflatten,
)

FORMATS: list[BoxFormat] = ["xyxy", "xywh", "cxcywh"]


def _valid_xyxy(raw: np.ndarray) -> np.ndarray:
    """Turn arbitrary (n, 4) values into boxes with x2 >= x1 and y2 >= y1.

    Sides under 1e-6 become 0: a side of 4e-15 beside a coordinate of 17 is below float64's
    resolution there, so converting to centre and size rounds it to 0 (IoU 1 as xyxy, 0 as
    cxcywh; hypothesis found it). Empty boxes stay in the tested set.
    """
    sides = np.abs(raw[:, 2:])
    sides[sides < 1e-6] = 0.0
    return np.concatenate([raw[:, :2], raw[:, :2] + sides], axis=1)


_raw_boxes = hnp.arrays(
    np.float64,
    st.tuples(st.integers(0, 8), st.just(4)),
    elements=st.floats(-100, 100, allow_nan=False, allow_subnormal=False),
)


def test_convert_known_values() -> None:
    xyxy = np.array([[10.0, 20.0, 30.0, 60.0]])
    np.testing.assert_allclose(convert_boxes(xyxy, "xyxy", "xywh"), [[10, 20, 20, 40]])
    np.testing.assert_allclose(convert_boxes(xyxy, "xyxy", "cxcywh"), [[20, 40, 20, 40]])
    np.testing.assert_allclose(
        convert_boxes([[20, 40, 20, 40]], "cxcywh", "xywh"), [[10, 20, 20, 40]]
    )
    assert convert_boxes([], "xyxy", "xywh").shape == (0, 4)
    with pytest.raises(ValueError):
        convert_boxes(xyxy, "xyxy", "yxyx")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        convert_boxes([[1.0, 2.0, 3.0]], "xyxy", "xywh")


@settings(max_examples=100, deadline=None)
@given(_raw_boxes, st.sampled_from(FORMATS), st.sampled_from(FORMATS))
def test_format_round_trip(raw: np.ndarray, src: BoxFormat, dst: BoxFormat) -> None:
    there = convert_boxes(raw, src, dst)
    back = convert_boxes(there, dst, src)
    np.testing.assert_allclose(back, raw, atol=1e-9)
    # Area does not depend on the format the boxes are written in.
    boxes = _valid_xyxy(raw)
    np.testing.assert_allclose(
        box_area(convert_boxes(boxes, "xyxy", dst), dst), box_area(boxes), atol=1e-9
    )


@settings(max_examples=100, deadline=None)
@given(_raw_boxes, _raw_boxes)
def test_iou_properties(raw_a: np.ndarray, raw_b: np.ndarray) -> None:
    a, b = _valid_xyxy(raw_a), _valid_xyxy(raw_b)
    iou = box_iou(a, b)
    assert iou.shape == (len(a), len(b))
    np.testing.assert_array_equal(iou, box_iou(b, a).T)
    assert np.all((iou >= 0) & (iou <= 1 + 1e-12))
    self_iou = np.diag(box_iou(a, a))
    positive = box_area(a) > 0
    np.testing.assert_allclose(self_iou[positive], 1.0)
    np.testing.assert_array_equal(self_iou[~positive], 0.0)
    g = generalized_box_iou(a, b)
    assert np.all((g >= -1 - 1e-12) & (g <= iou + 1e-12))
    np.testing.assert_allclose(g, generalized_box_iou(b, a).T)
    # The same IoU whatever the input format.
    np.testing.assert_allclose(
        box_iou(convert_boxes(a, "xyxy", "cxcywh"), convert_boxes(b, "xyxy", "cxcywh"), "cxcywh"),
        iou,
        atol=1e-9,
    )


def test_iou_known_values() -> None:
    a = np.array([[0.0, 0, 10, 10]])
    b = np.array([[5.0, 0, 15, 10], [20, 20, 30, 30], [10, 0, 20, 10], [2, 2, 4, 4]])
    np.testing.assert_allclose(box_iou(a, b), [[1 / 3, 0, 0, 0.04]])
    # GIoU: disjoint boxes are penalised by the empty part of their hull; nested ones are not.
    np.testing.assert_allclose(generalized_box_iou(a, b), [[1 / 3, 200 / 900 - 1, 0, 0.04]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_iou_accepts_torch() -> None:
    torch = pytest.importorskip("torch")
    a = torch.tensor([[0.0, 0, 10, 10]], requires_grad=True)
    np.testing.assert_allclose(box_iou(a, a), [[1.0]])


def test_package_imports_without_torch() -> None:
    # A None entry in sys.modules makes "import torch" fail, as if torch were not installed.
    code = "import sys; sys.modules['torch'] = None; import cnndsl.detection; print('ok')"
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- YOLO

ANCHORS = np.array([[10.0, 13.0], [33.0, 23.0], [62.0, 45.0]])
STRIDE = 16.0


def test_flatten_layout() -> None:
    n, a, c, h, w = 2, 3, 4, 5, 6
    raw = np.random.default_rng(0).normal(size=(n, a * (5 + c), h, w))
    flat = yolo_flatten(raw, a, c)
    assert flat.shape == (n, h * w * a, 5 + c)
    # Documented contract: channel a*(5+C)+k at (i, j) is slot (i*W + j)*A + a, field k.
    for img, anchor, k, i, j in [(0, 0, 0, 0, 0), (1, 2, 7, 4, 5), (0, 1, 4, 2, 3)]:
        assert flat[img, (i * w + j) * a + anchor, k] == raw[img, anchor * (5 + c) + k, i, j]
    np.testing.assert_array_equal(yolo_unflatten(flat, (h, w), a), raw)
    with pytest.raises(ValueError):
        yolo_flatten(raw, 2, c)


def test_decode_known_values() -> None:
    c, h, w = 2, 2, 3
    raw = np.zeros((1, 3 * (5 + c), h, w))
    # Anchor 1, row 1, column 2: tx = ty = 0 puts the centre mid-cell; tw = log 2 doubles width.
    base = 1 * (5 + c)
    raw[0, base + 2, 1, 2] = np.log(2.0)
    raw[0, base + 4, 1, 2] = 100.0
    raw[0, base + 6, 1, 2] = -100.0
    out = decode_yolo(raw, ANCHORS, STRIDE, c)
    slot = (1 * w + 2) * 3 + 1
    cx, cy = 2.5 * STRIDE, 1.5 * STRIDE
    bw, bh = 66.0, 23.0
    np.testing.assert_allclose(
        out.boxes[0, slot], [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
    )
    assert out.objectness[0, slot] == pytest.approx(1.0)
    np.testing.assert_allclose(out.class_probs[0, slot], [0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(out.scores[0, slot], [0.5, 0.0], atol=1e-12)
    assert out.boxes.shape == (1, h * w * 3, 4) and out.class_probs.shape == (1, h * w * 3, c)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 4), st.integers(1, 5), st.integers(0, 3))
def test_encode_inverts_decode(seed: int, h: int, w: int, c: int) -> None:
    rng = np.random.default_rng(seed)
    raw = rng.uniform(-6, 6, size=(2, 3 * (5 + c), h, w))
    decoded = decode_yolo(raw, ANCHORS, STRIDE, c)
    boxes = convert_boxes(decoded.boxes, "xyxy", "cxcywh")
    encoded = encode_yolo(boxes, (h, w), STRIDE, ANCHORS)
    np.testing.assert_allclose(encoded, yolo_flatten(raw, 3, c)[..., :4], rtol=1e-7, atol=1e-7)
    # ...and the other way round: decoding an encoding reproduces the boxes.
    back = yolo_flatten(raw, 3, c).copy()
    back[..., :4] = encoded
    redecoded = decode_yolo(yolo_unflatten(back, (h, w), 3), ANCHORS, STRIDE, c)
    np.testing.assert_allclose(redecoded.boxes, decoded.boxes, rtol=1e-9, atol=1e-9)


def test_build_targets_assignment() -> None:
    h, w = 4, 5
    gt = [
        np.array([[40.0, 20.0, 30.0, 22.0], [5.0, 60.0, 11.0, 12.0], [10.0, 10.0, 0.0, 5.0]]),
        np.zeros((0, 4)),
        np.array([[30.0, 30.0, 60.0, 40.0], [31.0, 31.0, 64.0, 44.0]]),  # same cell + anchor
    ]
    classes = [np.array([1, 0, 1]), np.array([], dtype=int), np.array([0, 1])]
    t = build_yolo_targets(gt, classes, (h, w), STRIDE, ANCHORS, num_classes=2)
    assert t.mask.shape == (3, h * w * 3)
    # Box 0: centre (40, 20) -> column 2, row 1; its shape is closest to anchor 1.
    assert np.flatnonzero(t.mask[0]).tolist() == sorted([(1 * w + 2) * 3 + 1, (3 * w + 0) * 3 + 0])
    slot = (1 * w + 2) * 3 + 1
    np.testing.assert_allclose(t.txty[0, slot], [0.5, 0.25])
    np.testing.assert_allclose(t.twth[0, slot], np.log([30 / 33, 22 / 23]))
    np.testing.assert_allclose(t.boxes[0, slot], [25, 9, 55, 31])
    assert t.classes[0, slot] == 1 and t.classes[0, 0] == -1
    assert len(t.gt_boxes[0]) == 2  # the zero-width box is dropped
    assert not t.mask[1].any()
    # Two boxes on one slot: the later one wins.
    (only,) = np.flatnonzero(t.mask[2])
    assert t.classes[2, only] == 1
    np.testing.assert_allclose(t.boxes[2, only], [-1, 9, 63, 53])
    assert t.num_positive == 3
    with pytest.raises(ValueError):
        build_yolo_targets(gt, classes, (h, w), STRIDE, ANCHORS, num_classes=1)


def test_targets_decode_to_ground_truth() -> None:
    rng = np.random.default_rng(1)
    h, w, c = 6, 7, 3
    xy = rng.uniform(0, [w * STRIDE, h * STRIDE], size=(10, 2))
    wh = rng.uniform(4, 80, size=(10, 2))
    gt = np.concatenate([xy, wh], axis=1)
    t = build_yolo_targets([gt], [rng.integers(0, c, 10)], (h, w), STRIDE, ANCHORS, c)
    flat = np.zeros((1, h * w * 3, 5 + c))
    flat[..., :4] = t.raw_boxes()
    decoded = decode_yolo(yolo_unflatten(flat, (h, w), 3), ANCHORS, STRIDE, c)
    np.testing.assert_allclose(decoded.boxes[t.mask], t.boxes[t.mask], atol=1e-6)
    assert {tuple(b) for b in np.round(t.boxes[t.mask], 6)} <= {
        tuple(b) for b in np.round(convert_boxes(gt, "cxcywh", "xyxy"), 6)
    }
