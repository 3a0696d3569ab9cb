"""Non-maximum suppression and YOLO post-processing (numpy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ._arrays import as_boxes, to_numpy
from .boxes import _safe_div


def _nms_sorted(boxes: np.ndarray, order: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy NMS over ``order`` (already best-first); returns kept indices into ``boxes``."""
    # Column views and areas are hoisted out of the loop; the IoU arithmetic is the same
    # operation sequence as ``box_iou`` so both agree bit for bit at the threshold.
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0.0, None)
        h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0.0, None)
        inter = w * h
        iou = _safe_div(inter, area[best] + area[rest] - inter)
        order = rest[iou <= iou_threshold]
    return keep


def _score_order(scores: np.ndarray) -> np.ndarray:
    """Indices by decreasing score; a stable sort keeps lower indices first on ties."""
    return np.argsort(-scores, kind="stable")


def nms(boxes: Any, scores: Any, iou_threshold: float, classes: Any = None) -> np.ndarray:
    """Indices (int64) of boxes kept by greedy NMS, highest score first.

    ``boxes`` is (n, 4) xyxy and ``scores`` (n,). A box is suppressed when its IoU with a
    higher-ranked kept box is strictly greater than ``iou_threshold`` (as torchvision's
    ``nms``). Equal scores rank the lower index first. With ``classes`` (n,), suppression only
    happens between boxes of the same class (batched NMS).
    """
    b = as_boxes(boxes).reshape(-1, 4)
    s = to_numpy(scores).reshape(-1)
    if b.shape[0] != s.shape[0]:
        raise ValueError(f"{b.shape[0]} boxes but {s.shape[0]} scores")
    if s.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    if classes is None:
        return np.asarray(_nms_sorted(b, _score_order(s), iou_threshold), dtype=np.int64)

    c = to_numpy(classes, np.int64).reshape(-1)
    if c.shape[0] != s.shape[0]:
        raise ValueError(f"{s.shape[0]} scores but {c.shape[0]} classes")
    # Classes never interact, so running NMS per class is exact and avoids comparing boxes
    # across classes (unlike torchvision's coordinate-offset trick, it is also exact in float).
    kept: list[int] = []
    for cls in np.unique(c):
        members = np.flatnonzero(c == cls)
        local = _nms_sorted(b[members], _score_order(s[members]), iou_threshold)
        kept.extend(members[local].tolist())
    kept_arr = np.sort(np.asarray(kept, dtype=np.int64))
    return kept_arr[_score_order(s[kept_arr])]


def batched_nms(boxes: Any, scores: Any, classes: Any, iou_threshold: float) -> np.ndarray:
    """Per-class NMS with torchvision's ``batched_nms`` argument order."""
    return nms(boxes, scores, iou_threshold, classes=classes)


class Detections(NamedTuple):
    """Final detections of one image, sorted by decreasing score."""

    boxes: np.ndarray
    """(K, 4) xyxy input pixels."""
    scores: np.ndarray
    """(K,) confidence, objectness * class probability."""
    classes: np.ndarray
    """(K,) int64 class index."""


def postprocess(
    decoded: Sequence[Any],
    score_threshold: float = 0.25,
    iou_threshold: float = 0.45,
    max_detections: int = 100,
    *,
    class_agnostic: bool = False,
    multi_label: bool = False,
) -> list[Detections]:
    """Turn decoded YOLO output (boxes, objectness, class_probs) into per-image detections.

    ``decoded`` is a :class:`~cnndsl.detection.boxes.YoloOutput` (or any triple of arrays
    shaped (N, S, 4), (N, S), (N, S, C); several heads can be concatenated along S first).
    The score of a slot is ``objectness * class_prob``; by default each slot proposes only its
    best class, with ``multi_label`` every class whose score passes. Candidates with
    ``score >= score_threshold`` go through NMS (per class unless ``class_agnostic``) and at
    most ``max_detections`` survivors are returned per image.
    """
    boxes_all, obj_all, probs_all = (to_numpy(x) for x in decoded)
    if probs_all.ndim != 3 or obj_all.shape != probs_all.shape[:2]:
        raise ValueError("decoded must be shaped (N, S, 4), (N, S), (N, S, C)")
    results: list[Detections] = []
    for boxes, obj, probs in zip(boxes_all, obj_all, probs_all, strict=True):
        # A head without class outputs is a one-class detector scored by objectness alone.
        scores = obj[:, None] * probs if probs.shape[1] else obj[:, None]
        results.append(select_detections(
            boxes, scores, score_threshold, iou_threshold, max_detections,
            class_agnostic=class_agnostic, multi_label=multi_label))
    return results


def select_detections(
    boxes: np.ndarray,
    scores: np.ndarray,
    score_threshold: float,
    iou_threshold: float,
    max_detections: int,
    *,
    class_agnostic: bool = False,
    multi_label: bool = False,
    strict: bool = False,
) -> Detections:
    """One image's detections from its slots' boxes (S, 4) and class scores (S, C).

    Each slot proposes its best class (with ``multi_label`` every class) whose score passes
    ``score_threshold`` (reached, or exceeded when ``strict``); the candidates go through NMS,
    per class unless ``class_agnostic``, and at most ``max_detections`` survive.
    """
    passes = scores > score_threshold if strict else scores >= score_threshold
    if multi_label:
        slot, cls = np.nonzero(passes)
        score = scores[slot, cls]
    else:
        cls = np.argmax(scores, axis=1)
        slot = np.flatnonzero(passes[np.arange(len(scores)), cls])
        cls = cls[slot]
        score = scores[slot, cls]
    cand = boxes[slot]
    keep = nms(cand, score, iou_threshold, classes=None if class_agnostic else cls)
    keep = keep[:max_detections]
    return Detections(cand[keep], score[keep], cls[keep].astype(np.int64))
