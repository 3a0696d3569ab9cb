"""Anchor-free (YOLOv8-style) box decoding and post-processing (numpy).

Head layout
-----------
Each scale emits ``raw`` of shape ``(N, 4 * R + C, H, W)`` for ``R = reg_max`` bins and ``C``
classes: channels ``0 .. 4R-1`` are the box branch, four groups of ``R`` logits (left, top,
right, bottom, in that order), and channels ``4R .. 4R+C-1`` the class logits (independent
sigmoids). The scales are flattened row-major and concatenated: anchor ``a`` of a scale with a
``H x W`` grid is cell ``(i, j) = divmod(a, W)``.

Decoding, for the cell in row ``i`` and column ``j`` of a scale with stride ``s``::

    point = (j + 0.5, i + 0.5)                     # the anchor point, in grid units
    d_k   = sum_b softmax(logits_k)[b] * b         # the distribution focal loss' expectation
    box   = (point - (d_left, d_top), point + (d_right, d_bottom)) * s      # xyxy pixels
    score = sigmoid(class logits)

Ultralytics' ``Detect`` head computes the same (it returns the box as centre and size).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ._arrays import to_numpy
from .boxes import sigmoid
from .nms import Detections, select_detections


class AnchorFreeOutput(NamedTuple):
    """Decoded anchor-free predictions: ``boxes`` (N, A, 4) xyxy pixels, ``scores`` (N, A, C)."""

    boxes: np.ndarray
    scores: np.ndarray


def anchor_points(grids: Sequence[tuple[int, int]], strides: Sequence[float],
                  offset: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Anchor points (A, 2) as (x, y) in grid units of their scale, and each one's stride (A,)."""
    if len(grids) != len(strides):
        raise ValueError(f"{len(grids)} grids but {len(strides)} strides")
    points, stride_of = [], []
    for (h, w), stride in zip(grids, strides, strict=True):
        ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                             indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()], axis=1) + offset)
        stride_of.append(np.full(h * w, float(stride)))
    if not points:
        return np.zeros((0, 2)), np.zeros(0)
    return np.concatenate(points), np.concatenate(stride_of)


def dfl_expectation(logits: Any) -> np.ndarray:
    """The expected bin of each distribution: softmax over the last axis, then ``@ arange(R)``."""
    x = to_numpy(logits)
    x = x - x.max(axis=-1, keepdims=True)
    weights = np.exp(x)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ np.arange(x.shape[-1], dtype=np.float64)


def distance_to_box(points: Any, distances: Any) -> np.ndarray:
    """xyxy boxes from anchor points (..., 2) and (left, top, right, bottom) distances (..., 4)."""
    p, d = to_numpy(points), to_numpy(distances)
    return np.concatenate([p - d[..., :2], p + d[..., 2:]], axis=-1)


def box_to_distance(points: Any, boxes: Any, limit: float | None = None) -> np.ndarray:
    """(left, top, right, bottom) distances of xyxy ``boxes`` from ``points``, clipped to
    ``[0, limit]`` when a limit is given (the training target of the box distributions)."""
    p, b = to_numpy(points), to_numpy(boxes)
    d = np.concatenate([p - b[..., :2], b[..., 2:] - p], axis=-1)
    return d if limit is None else np.clip(d, 0.0, limit)


def flatten_anchor_free(outputs: Sequence[Any], num_classes: int, reg_max: int = 16
                        ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Concatenate per-scale maps (N, 4R+C, H, W) to (N, A, 4R+C); also the grid of each scale."""
    channels = 4 * reg_max + num_classes
    flats, grids = [], []
    for raw in outputs:
        x = to_numpy(raw)
        if x.ndim != 4 or x.shape[1] != channels:
            raise ValueError(f"an anchor-free map must be (N, {channels}, H, W) for reg_max "
                             f"{reg_max} and {num_classes} classes, got {x.shape}")
        n, _, h, w = x.shape
        flats.append(x.reshape(n, channels, h * w).transpose(0, 2, 1))
        grids.append((h, w))
    if not flats:
        raise ValueError("no feature maps to decode")
    return np.concatenate(flats, axis=1), grids


def decode_anchor_free(outputs: Sequence[Any], strides: Sequence[float], num_classes: int,
                       reg_max: int = 16) -> AnchorFreeOutput:
    """Boxes (xyxy pixels) and class scores of every anchor point of every scale."""
    flat, grids = flatten_anchor_free(outputs, num_classes, reg_max)
    points, stride_of = anchor_points(grids, strides)
    n, a, _ = flat.shape
    distances = dfl_expectation(flat[..., : 4 * reg_max].reshape(n, a, 4, reg_max))
    boxes = distance_to_box(points, distances) * stride_of[:, None]
    return AnchorFreeOutput(boxes, sigmoid(flat[..., 4 * reg_max:]))


def postprocess_anchor_free(
    decoded: AnchorFreeOutput | tuple[Any, Any],
    score_threshold: float = 0.25,
    iou_threshold: float = 0.7,
    max_detections: int = 300,
    *,
    class_agnostic: bool = False,
) -> list[Detections]:
    """Per-image detections: each anchor proposes its best class; candidates whose score is
    strictly above ``score_threshold`` go through NMS (per class unless ``class_agnostic``),
    and at most ``max_detections`` survive (Ultralytics' ``non_max_suppression`` defaults)."""
    boxes_all, scores_all = (to_numpy(x) for x in decoded)
    if scores_all.ndim != 3 or boxes_all.shape[:2] != scores_all.shape[:2]:
        raise ValueError("decoded must be shaped (N, A, 4), (N, A, C)")
    return [select_detections(boxes, scores, score_threshold, iou_threshold, max_detections,
                              class_agnostic=class_agnostic, strict=True)
            for boxes, scores in zip(boxes_all, scores_all, strict=True)]


__all__ = ["AnchorFreeOutput", "anchor_points", "box_to_distance", "decode_anchor_free",
           "dfl_expectation", "distance_to_box", "flatten_anchor_free",
           "postprocess_anchor_free"]
