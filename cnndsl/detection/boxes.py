"""Bounding-box utilities and the YOLO grid box encoding.

Box formats (all in pixels, last axis of length 4):

* ``"xyxy"``   -- ``(x1, y1, x2, y2)``: top-left and bottom-right corners.
* ``"xywh"``   -- ``(x, y, w, h)``: top-left corner plus width/height (COCO ``bbox``).
* ``"cxcywh"`` -- ``(cx, cy, w, h)``: centre plus width/height (YOLO).

YOLO head layout
----------------
A YOLO head emits ``raw`` of shape ``(N, A * (5 + C), H, W)`` for ``A`` anchors and ``C``
classes. Channel ``a * (5 + C) + k`` of anchor ``a`` holds, for ``k`` =

* ``0, 1`` -- ``tx, ty``: centre offset logits inside the grid cell,
* ``2, 3`` -- ``tw, th``: log-scale of the anchor width/height,
* ``4``    -- objectness logit,
* ``5 + c`` -- logit of class ``c`` (independent sigmoids, not a softmax).

Decoding follows YOLOv3, for the cell in row ``i`` (y) and column ``j`` (x)::

    cx = (sigmoid(tx) + j) * stride        w = anchor_w * exp(tw)
    cy = (sigmoid(ty) + i) * stride        h = anchor_h * exp(th)
    objectness = sigmoid(obj)              class_probs = sigmoid(class logits)
    score[c] = objectness * class_probs[c]

with anchors given in input pixels. Decoded predictions are flattened to ``S = H * W * A``
*slots* in row-major ``(i, j, a)`` order: slot ``s = (i * W + j) * A + a``. ``yolo_flatten``
and ``yolo_unflatten`` convert between the two layouts; an exporter must reproduce them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

from ._arrays import as_boxes, to_numpy

BoxFormat = Literal["xyxy", "xywh", "cxcywh"]
_FORMATS = ("xyxy", "xywh", "cxcywh")

# Offsets are clipped this far inside (0, 1) before taking the logit, so that a centre on a
# cell border encodes to a large finite logit instead of +-inf.
_LOGIT_EPS = 1e-12


# --------------------------------------------------------------------------- formats


def _to_xyxy(boxes: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "xyxy":
        return boxes.copy()
    a, b, c, d = np.moveaxis(boxes, -1, 0)
    if fmt == "xywh":
        return np.stack([a, b, a + c, b + d], axis=-1)
    if fmt == "cxcywh":
        return np.stack([a - c / 2, b - d / 2, a + c / 2, b + d / 2], axis=-1)
    raise ValueError(f"unknown box format {fmt!r}; expected one of {_FORMATS}")


def _from_xyxy(boxes: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "xyxy":
        return boxes
    x1, y1, x2, y2 = np.moveaxis(boxes, -1, 0)
    if fmt == "xywh":
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=-1)
    if fmt == "cxcywh":
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)
    raise ValueError(f"unknown box format {fmt!r}; expected one of {_FORMATS}")


def convert_boxes(boxes: Any, src: BoxFormat, dst: BoxFormat) -> np.ndarray:
    """Convert boxes of shape (..., 4) from format ``src`` to format ``dst`` (float64 copy)."""
    arr = as_boxes(boxes)
    if src not in _FORMATS or dst not in _FORMATS:
        raise ValueError(f"unknown box format in {src!r} -> {dst!r}; expected {_FORMATS}")
    if src == dst:
        return arr.copy()
    return _from_xyxy(_to_xyxy(arr, src), dst)


def box_area(boxes: Any, fmt: BoxFormat = "xyxy") -> np.ndarray:
    """Area of each box, shape (...,); boxes with x2 < x1 give a negative area."""
    xyxy = _to_xyxy(as_boxes(boxes), fmt)
    return (xyxy[..., 2] - xyxy[..., 0]) * (xyxy[..., 3] - xyxy[..., 1])


def _inter_union(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise intersection and union areas of xyxy boxes a (n, 4) and b (m, 4)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return inter, union


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 wherever den <= 0 (degenerate boxes have no overlap)."""
    out = np.zeros(np.broadcast_shapes(num.shape, den.shape))
    np.divide(num, den, out=out, where=den > 0)
    return out


def box_iou(a: Any, b: Any, fmt: BoxFormat = "xyxy") -> np.ndarray:
    """Pairwise IoU matrix of shape (len(a), len(b)); 0 where the union is empty."""
    a_xy = _to_xyxy(as_boxes(a, "a").reshape(-1, 4), fmt)
    b_xy = _to_xyxy(as_boxes(b, "b").reshape(-1, 4), fmt)
    inter, union = _inter_union(a_xy, b_xy)
    return _safe_div(inter, union)


def generalized_box_iou(a: Any, b: Any, fmt: BoxFormat = "xyxy") -> np.ndarray:
    """Pairwise generalized IoU (Rezatofighi et al. 2019), shape (len(a), len(b)), in [-1, 1]."""
    a_xy = _to_xyxy(as_boxes(a, "a").reshape(-1, 4), fmt)
    b_xy = _to_xyxy(as_boxes(b, "b").reshape(-1, 4), fmt)
    inter, union = _inter_union(a_xy, b_xy)
    iou = _safe_div(inter, union)
    lt = np.minimum(a_xy[:, None, :2], b_xy[None, :, :2])
    rb = np.maximum(a_xy[:, None, 2:], b_xy[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    hull = wh[..., 0] * wh[..., 1]
    # A zero-area hull means both boxes are degenerate and coincide: no penalty term.
    return iou - _safe_div(hull - union, hull)


giou = generalized_box_iou


# --------------------------------------------------------------------------- YOLO


def sigmoid(x: Any) -> np.ndarray:
    """Numerically stable logistic function."""
    x = to_numpy(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logit(p: Any, eps: float = _LOGIT_EPS) -> np.ndarray:
    """Inverse of :func:`sigmoid`, with ``p`` clipped to ``[eps, 1 - eps]``."""
    p = np.clip(to_numpy(p), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def _anchors(anchors: Any) -> np.ndarray:
    arr = to_numpy(anchors).reshape(-1, 2)
    if arr.shape[0] == 0 or np.any(arr <= 0):
        raise ValueError("anchors must be a non-empty (A, 2) array of positive (w, h) pixels")
    return arr


def yolo_grid(grid_hw: tuple[int, int], num_anchors: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot cell coordinates ``(S, 2)`` as (column j, row i) and anchor index ``(S,)``."""
    h, w = grid_hw
    ii, jj, aa = np.meshgrid(np.arange(h), np.arange(w), np.arange(num_anchors), indexing="ij")
    cells = np.stack([jj.ravel(), ii.ravel()], axis=-1).astype(np.float64)
    return cells, aa.ravel()


def yolo_flatten(raw: Any, num_anchors: int, num_classes: int) -> np.ndarray:
    """Reshape a head output (N, A*(5+C), H, W) to per-slot rows (N, H*W*A, 5+C)."""
    arr = to_numpy(raw)
    if arr.ndim != 4:
        raise ValueError(f"raw must have shape (N, A*(5+C), H, W), got {arr.shape}")
    n, ch, h, w = arr.shape
    per_anchor = 5 + num_classes
    if ch != num_anchors * per_anchor:
        raise ValueError(f"raw has {ch} channels, expected A*(5+C) = {num_anchors}*{per_anchor}")
    arr = arr.reshape(n, num_anchors, per_anchor, h, w)
    return arr.transpose(0, 3, 4, 1, 2).reshape(n, h * w * num_anchors, per_anchor)


def yolo_unflatten(flat: Any, grid_hw: tuple[int, int], num_anchors: int) -> np.ndarray:
    """Inverse of :func:`yolo_flatten`: (N, H*W*A, 5+C) back to (N, A*(5+C), H, W)."""
    arr = to_numpy(flat)
    h, w = grid_hw
    n, s, per_anchor = arr.shape
    if s != h * w * num_anchors:
        raise ValueError(f"flat has {s} slots, expected H*W*A = {h * w * num_anchors}")
    arr = arr.reshape(n, h, w, num_anchors, per_anchor)
    return arr.transpose(0, 3, 4, 1, 2).reshape(n, num_anchors * per_anchor, h, w)


class YoloOutput(NamedTuple):
    """Decoded YOLO predictions, one row per slot ``s = (i * W + j) * A + a``."""

    boxes: np.ndarray
    """(N, S, 4) boxes, xyxy input pixels."""
    objectness: np.ndarray
    """(N, S) sigmoid of the objectness logit."""
    class_probs: np.ndarray
    """(N, S, C) sigmoid of each class logit."""

    @property
    def scores(self) -> np.ndarray:
        """(N, S, C) per-class confidence ``objectness * class_probs``."""
        return self.objectness[..., None] * self.class_probs


def _decode_flat(flat: np.ndarray, grid_hw: tuple[int, int], anc: np.ndarray,
                 stride: float) -> np.ndarray:
    cells, anchor_idx = yolo_grid(grid_hw, anc.shape[0])
    centre = (sigmoid(flat[..., 0:2]) + cells) * stride
    size = anc[anchor_idx] * np.exp(flat[..., 2:4])
    return np.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def decode_yolo(raw: Any, anchors: Any, stride: float, num_classes: int) -> YoloOutput:
    """Decode a YOLOv3 head output (N, A*(5+C), H, W) into boxes, objectness and class probs.

    See the module docstring for the channel layout and formulas. ``anchors`` is (A, 2) of
    (w, h) in input pixels and ``stride`` the input pixels per grid cell.
    """
    anc = _anchors(anchors)
    arr = to_numpy(raw)
    flat = yolo_flatten(arr, anc.shape[0], num_classes)
    boxes = _decode_flat(flat, (arr.shape[2], arr.shape[3]), anc, stride)
    return YoloOutput(boxes, sigmoid(flat[..., 4]), sigmoid(flat[..., 5:]))


def decode_yolo_boxes(raw: Any, anchors: Any, stride: float, num_classes: int) -> np.ndarray:
    """The boxes of :func:`decode_yolo` alone, (N, H*W*A, 4) xyxy input pixels."""
    anc = _anchors(anchors)
    arr = to_numpy(raw)
    flat = yolo_flatten(arr, anc.shape[0], num_classes)
    return _decode_flat(flat, (arr.shape[2], arr.shape[3]), anc, stride)


def encode_yolo(
    boxes_cxcywh: Any, grid_hw: tuple[int, int], stride: float, anchors: Any
) -> np.ndarray:
    """Exact inverse of the box part of :func:`decode_yolo`: per-slot boxes to raw (tx,ty,tw,th).

    ``boxes_cxcywh`` has shape (..., H*W*A, 4): one box, in cxcywh input pixels, per slot in
    the slot order of the module docstring. Returns the raw ``(tx, ty, tw, th)`` of the same
    shape, so that decoding them at the same slots gives the boxes back. A centre outside its
    slot's cell cannot be represented; its offset is clipped into the cell (logit of 1e-12 or
    1 - 1e-12), and a non-positive width or height is clipped likewise before the log.
    """
    anc = _anchors(anchors)
    arr = as_boxes(boxes_cxcywh)
    cells, anchor_idx = yolo_grid(grid_hw, anc.shape[0])
    if arr.shape[-2] != cells.shape[0]:
        raise ValueError(f"expected {cells.shape[0]} slots on axis -2, got {arr.shape[-2]}")
    txty = logit(arr[..., 0:2] / stride - cells)
    twth = np.log(np.clip(arr[..., 2:4] / anc[anchor_idx], _LOGIT_EPS, None))
    return np.concatenate([txty, twth], axis=-1)


def anchor_shape_iou(wh: Any, anchors: Any) -> np.ndarray:
    """IoU of (M, 2) box sizes and (A, 2) anchor sizes with centres aligned, shape (M, A)."""
    wh_arr = to_numpy(wh).reshape(-1, 2)
    anc = _anchors(anchors)
    inter = np.minimum(wh_arr[:, None, 0], anc[None, :, 0]) * np.minimum(
        wh_arr[:, None, 1], anc[None, :, 1]
    )
    union = (wh_arr[:, 0] * wh_arr[:, 1])[:, None] + (anc[:, 0] * anc[:, 1])[None, :] - inter
    return _safe_div(inter, union)


@dataclass
class YoloTargets:
    """Training targets for one YOLO head, per slot ``s = (i * W + j) * A + a``.

    ``mask[n, s]`` is True for the slot responsible for a ground-truth object: the cell that
    contains the box centre, paired with the anchor of best shape IoU. Other fields are only
    meaningful where ``mask`` is True (zeros, or -1 for ``classes``, elsewhere).
    """

    mask: np.ndarray
    """(N, S) bool, slots assigned to an object (objectness target 1)."""
    txty: np.ndarray
    """(N, S, 2) centre offset inside the cell in [0, 1]: the target of sigmoid(tx, ty)."""
    twth: np.ndarray
    """(N, S, 2) log(box size / anchor size): the target of the raw tw, th."""
    boxes: np.ndarray
    """(N, S, 4) assigned ground-truth box, xyxy input pixels (for IoU losses)."""
    classes: np.ndarray
    """(N, S) int64 class index of the assigned object, -1 where unassigned."""
    gt_boxes: list[np.ndarray]
    """All valid ground-truth boxes of each image, (M_n, 4) xyxy pixels (for ignore masks)."""

    @property
    def num_positive(self) -> int:
        """Number of assigned slots over the whole batch."""
        return int(self.mask.sum())

    def raw_boxes(self) -> np.ndarray:
        """(N, S, 4) raw (tx, ty, tw, th) whose decoding is the assigned box at each slot."""
        return np.concatenate([logit(self.txty), self.twth], axis=-1)


def build_yolo_targets(
    gt_boxes: Sequence[Any],
    gt_classes: Sequence[Any],
    grid_hw: tuple[int, int],
    stride: float,
    anchors: Any,
    num_classes: int | None = None,
) -> YoloTargets:
    """Assign ground-truth boxes (per image, (M, 4) cxcywh pixels) to YOLO slots.

    Each box goes to the cell containing its centre (clamped to the grid) and to the anchor
    with the highest shape IoU (first anchor on ties). Boxes with a non-positive width or
    height are skipped. When two boxes claim the same slot, the later box in the list wins.
    """
    if len(gt_boxes) != len(gt_classes):
        raise ValueError("gt_boxes and gt_classes must have one entry per image")
    anc = _anchors(anchors)
    h, w = grid_hw
    n_img, n_anchor = len(gt_boxes), anc.shape[0]
    slots = h * w * n_anchor
    mask = np.zeros((n_img, slots), dtype=bool)
    txty = np.zeros((n_img, slots, 2))
    twth = np.zeros((n_img, slots, 2))
    boxes = np.zeros((n_img, slots, 4))
    classes = np.full((n_img, slots), -1, dtype=np.int64)
    valid_boxes: list[np.ndarray] = []
    for n, (img_boxes, img_classes) in enumerate(zip(gt_boxes, gt_classes, strict=True)):
        bx = as_boxes(img_boxes).reshape(-1, 4)
        cl = to_numpy(img_classes, np.int64).reshape(-1)
        if cl.shape[0] != bx.shape[0]:
            raise ValueError(f"image {n}: {bx.shape[0]} boxes but {cl.shape[0]} classes")
        if num_classes is not None and np.any((cl < 0) | (cl >= num_classes)):
            raise ValueError(f"image {n}: class index outside [0, {num_classes})")
        keep = (bx[:, 2] > 0) & (bx[:, 3] > 0)
        bx, cl = bx[keep], cl[keep]
        valid_boxes.append(_to_xyxy(bx, "cxcywh"))
        if bx.shape[0] == 0:
            continue
        grid_xy = bx[:, 0:2] / stride
        col = np.clip(np.floor(grid_xy[:, 0]).astype(np.int64), 0, w - 1)
        row = np.clip(np.floor(grid_xy[:, 1]).astype(np.int64), 0, h - 1)
        best = np.argmax(anchor_shape_iou(bx[:, 2:4], anc), axis=1)
        slot = (row * w + col) * n_anchor + best
        # numpy does not promise which write wins for repeated fancy indices, so keep the last
        # box per slot explicitly.
        _, first_from_end = np.unique(slot[::-1], return_index=True)
        pick = slot.shape[0] - 1 - first_from_end
        slot, best = slot[pick], best[pick]
        offset = grid_xy[pick] - np.stack([col[pick], row[pick]], axis=-1)
        mask[n, slot] = True
        # Centres outside the image are clamped into the border cell.
        txty[n, slot] = np.clip(offset, 0.0, 1.0)
        twth[n, slot] = np.log(bx[pick, 2:4] / anc[best])
        boxes[n, slot] = valid_boxes[-1][pick]
        classes[n, slot] = cl[pick]
    return YoloTargets(mask, txty, twth, boxes, classes, valid_boxes)
