"""Task-aligned assignment of ground truths to anchor points (TOOD; as YOLOv8 trains) (torch).

For every ground truth ``g`` and anchor point ``a`` whose point lies inside ``g``:

    t(g, a) = score(a, class of g) ** alpha * CIoU(g, predicted box of a).clamp(0) ** beta

Each ground truth takes its ``topk`` anchors by ``t`` (among those inside it); an anchor taken
by several keeps the one it overlaps most. A positive anchor's target is the one-hot class of
its ground truth scaled by ``t / max_t(g) * max_IoU(g)`` (the maxima over ``g``'s positives),
so that the classification target carries the localisation quality.

torch is imported inside the functions so that ``cnndsl.detection`` imports without it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import torch

_EPS = 1e-9


class Assignment(NamedTuple):
    """Targets per anchor: ``boxes`` (N, A, 4) xyxy, ``scores`` (N, A, C), ``positive`` (N, A)
    and the index of the assigned ground truth ``gt_index`` (N, A; 0 where not positive)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    positive: torch.Tensor
    gt_index: torch.Tensor


def ciou(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Complete IoU of corresponding xyxy boxes (..., 4): IoU less the normalised centre
    distance and an aspect-ratio term (Zheng et al. 2020), as Ultralytics computes it."""
    import torch

    w1, h1 = a[..., 2] - a[..., 0], (a[..., 3] - a[..., 1]).clamp(min=eps)
    w2, h2 = b[..., 2] - b[..., 0], (b[..., 3] - b[..., 1]).clamp(min=eps)
    inter = ((torch.minimum(a[..., 2], b[..., 2]) - torch.maximum(a[..., 0], b[..., 0])).clamp(0)
             * (torch.minimum(a[..., 3], b[..., 3]) - torch.maximum(a[..., 1], b[..., 1])).clamp(0))
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.maximum(a[..., 2], b[..., 2]) - torch.minimum(a[..., 0], b[..., 0])
    ch = torch.maximum(a[..., 3], b[..., 3]) - torch.minimum(a[..., 1], b[..., 1])
    c2 = cw**2 + ch**2 + eps
    rho2 = ((b[..., 0] + b[..., 2] - a[..., 0] - a[..., 2]) ** 2
            + (b[..., 1] + b[..., 3] - a[..., 1] - a[..., 3]) ** 2) / 4
    v = (4 / math.pi**2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


def points_in_boxes(points: torch.Tensor, boxes: torch.Tensor, min_side: float | None = None
                    ) -> torch.Tensor:
    """(N, G, A) mask of anchor points (A, 2) strictly inside xyxy boxes (N, G, 4); with
    ``min_side``, a box side shorter than it is first widened to it about the box centre."""
    import torch

    if min_side is not None:
        centre = (boxes[..., :2] + boxes[..., 2:]) / 2
        half = torch.clamp(boxes[..., 2:] - boxes[..., :2], min=min_side) / 2
        boxes = torch.cat([centre - half, centre + half], dim=-1)
    lt = points[None, None] - boxes[..., None, :2]
    rb = boxes[..., None, 2:] - points[None, None]
    return torch.cat([lt, rb], dim=-1).amin(dim=-1) > _EPS


def task_aligned_assign(
    scores: torch.Tensor,
    boxes: torch.Tensor,
    points: torch.Tensor,
    gt_classes: torch.Tensor,
    gt_boxes: torch.Tensor,
    gt_valid: torch.Tensor,
    *,
    topk: int = 10,
    alpha: float = 0.5,
    beta: float = 6.0,
    min_side: float | None = None,
) -> Assignment:
    """Assign padded ground truths to anchors.

    ``scores`` (N, A, C) are class probabilities, ``boxes`` (N, A, 4) predicted xyxy boxes,
    ``points`` (A, 2) anchor points, all in one unit (pixels); ``gt_classes`` (N, G) integer,
    ``gt_boxes`` (N, G, 4) xyxy, ``gt_valid`` (N, G) false for padding rows. ``min_side``
    widens small truths when choosing the anchors inside them (Ultralytics 8.4 uses the second
    stride; the original YOLOv8 assigner, the default here, does not widen).
    """
    import torch

    n, a, c = scores.shape
    g = gt_boxes.shape[1]
    device = scores.device
    if g == 0:
        return Assignment(torch.zeros(n, a, 4, device=device), torch.zeros_like(scores),
                          torch.zeros(n, a, dtype=torch.bool, device=device),
                          torch.zeros(n, a, dtype=torch.long, device=device))
    valid = gt_valid.bool()[..., None]                                  # N, G, 1
    inside = points_in_boxes(points, gt_boxes, min_side) & valid         # N, G, A
    cls = gt_classes.long().clamp(min=0)
    class_score = torch.gather(scores.transpose(1, 2), 1,
                               cls[..., None].expand(n, g, a))          # N, G, A
    overlaps = torch.zeros(n, g, a, dtype=boxes.dtype, device=device)
    pairs_gt = gt_boxes[:, :, None].expand(n, g, a, 4)[inside]
    pairs_pd = boxes[:, None].expand(n, g, a, 4)[inside]
    overlaps[inside] = ciou(pairs_gt, pairs_pd).clamp(min=0).to(boxes.dtype)
    metric = torch.where(inside, class_score, torch.zeros_like(class_score)) ** alpha
    metric = metric * overlaps**beta

    k = min(topk, a)
    top = torch.topk(metric, k, dim=-1).indices                          # N, G, k
    chosen = torch.zeros(n, g, a, dtype=torch.bool, device=device)
    chosen.scatter_(-1, top, True)
    positive = chosen & inside                                           # N, G, A

    # An anchor chosen by several ground truths keeps the one it overlaps most.
    several = positive.sum(dim=1, keepdim=True) > 1                      # N, 1, A
    best = torch.zeros_like(positive)
    best.scatter_(1, overlaps.argmax(dim=1, keepdim=True), True)
    positive = torch.where(several, best, positive)
    foreground = positive.any(dim=1)                                     # N, A
    gt_index = positive.to(torch.uint8).argmax(dim=1)                    # N, A

    batch = torch.arange(n, device=device)[:, None]
    target_boxes = gt_boxes[batch, gt_index]                             # N, A, 4
    target_classes = cls[batch, gt_index]
    target_scores = torch.nn.functional.one_hot(target_classes, c).to(scores.dtype)
    target_scores = target_scores * foreground[..., None]

    metric = metric * positive
    best_metric = metric.amax(dim=-1, keepdim=True)                      # N, G, 1
    best_overlap = (overlaps * positive).amax(dim=-1, keepdim=True)
    quality = (metric * best_overlap / (best_metric + _EPS)).amax(dim=1)  # N, A
    return Assignment(target_boxes, target_scores * quality[..., None], foreground,
                      torch.where(foreground, gt_index, torch.zeros_like(gt_index)))


__all__ = ["Assignment", "ciou", "points_in_boxes", "task_aligned_assign"]
