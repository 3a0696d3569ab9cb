"""Detection and localisation losses (torch).

torch is imported inside the functions so that ``cnndsl.detection`` stays importable without
it. Tensor arguments may also be numpy arrays; they are moved to the device and dtype of the
prediction. Every masked mean over an empty selection returns a graph-connected zero rather
than NaN, so batches without objects train normally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import numpy as np

from .boxes import YoloTargets, _anchors, box_iou, decode_yolo_boxes, yolo_grid

if TYPE_CHECKING:
    import torch

Reduction = Literal["mean", "sum", "none"]
_EPS = 1e-9


def _like(x: Any, ref: torch.Tensor, dtype: Any = None) -> torch.Tensor:
    """``x`` as a tensor on ``ref``'s device (and dtype unless one is given)."""
    import torch

    tensor = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return tensor.to(device=ref.device, dtype=ref.dtype if dtype is None else dtype)


def _reduce(values: torch.Tensor, mask: Any, reduction: Reduction) -> torch.Tensor:
    """Reduce per-element losses over the elements selected by ``mask`` (all if None)."""
    import torch

    if mask is not None:
        values = values[_like(mask, values, torch.bool)]
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    if values.numel() == 0:
        return values.sum() * 0.0
    return values.mean()


def bce_with_logits_loss(
    logits: torch.Tensor, targets: Any, mask: Any = None, reduction: Reduction = "mean"
) -> torch.Tensor:
    """Binary cross-entropy on logits, optionally restricted to ``mask`` (broadcast-free)."""
    import torch.nn.functional as F

    per_elem = F.binary_cross_entropy_with_logits(logits, _like(targets, logits), reduction="none")
    return _reduce(per_elem, mask, reduction)


def objectness_loss(
    obj_logits: torch.Tensor, obj_targets: Any, mask: Any = None, reduction: Reduction = "mean"
) -> torch.Tensor:
    """Objectness BCE; ``mask`` selects the slots that count (e.g. all but ignored ones)."""
    return bce_with_logits_loss(obj_logits, obj_targets, mask, reduction)


def class_loss(
    class_logits: torch.Tensor, class_targets: Any, mask: Any = None, reduction: Reduction = "mean"
) -> torch.Tensor:
    """Per-class sigmoid BCE; ``class_targets`` is (...,) class indices or (..., C) one-hot.

    ``mask`` (...) selects the slots (usually positives); the loss averages over the selected
    slots and classes. Index targets outside [0, C) (such as -1) give an all-zero target row.
    """
    import torch

    if class_logits.shape[-1] == 0:
        return class_logits.sum() * 0.0
    targets = _like(class_targets, class_logits, None if _is_float(class_targets) else torch.long)
    if targets.dtype == torch.long:
        num_classes = class_logits.shape[-1]
        valid = (targets >= 0) & (targets < num_classes)
        one_hot = torch.nn.functional.one_hot(targets.clamp(0, num_classes - 1), num_classes)
        targets = (one_hot * valid[..., None]).to(class_logits.dtype)
    return bce_with_logits_loss(class_logits, targets, mask, reduction)


def _is_float(x: Any) -> bool:
    """Whether ``x`` holds floating-point values (one-hot) rather than class indices."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        return bool(np.issubdtype(np.asarray(x).dtype, np.floating))
    return bool(getattr(dtype, "is_floating_point", False)) or (
        isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.floating)
    )


def box_mse_loss(
    pred: torch.Tensor, target: Any, mask: Any = None, reduction: Reduction = "mean"
) -> torch.Tensor:
    """Squared error of box parameters (..., 4), averaged over selected slots and coordinates."""
    per_slot = (pred - _like(target, pred)) ** 2
    return _reduce(per_slot, mask, reduction)


def aligned_box_iou(a: torch.Tensor, b: torch.Tensor, generalized: bool = False) -> torch.Tensor:
    """IoU (or GIoU) of corresponding xyxy boxes a[..., 4] and b[..., 4], differentiable."""
    import torch

    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a + area_b - inter
    iou = inter / union.clamp(min=_EPS)
    if not generalized:
        return iou
    hull_wh = torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])
    hull = hull_wh.clamp(min=0).prod(dim=-1)
    return iou - (hull - union) / hull.clamp(min=_EPS)


def iou_loss(
    pred_xyxy: torch.Tensor,
    target_xyxy: Any,
    mask: Any = None,
    kind: Literal["iou", "giou"] = "iou",
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """``1 - IoU`` (or ``1 - GIoU`` with ``kind="giou"``) of aligned xyxy boxes (..., 4)."""
    if kind not in ("iou", "giou"):
        raise ValueError(f"unknown IoU loss kind {kind!r}")
    iou = aligned_box_iou(pred_xyxy, _like(target_xyxy, pred_xyxy), generalized=kind == "giou")
    return _reduce(1.0 - iou, mask, reduction)


def giou_loss(
    pred_xyxy: torch.Tensor, target_xyxy: Any, mask: Any = None, reduction: Reduction = "mean"
) -> torch.Tensor:
    """``1 - GIoU`` of aligned xyxy boxes; unlike ``1 - IoU`` it has gradient without overlap."""
    return iou_loss(pred_xyxy, target_xyxy, mask, "giou", reduction)


class YoloLoss(NamedTuple):
    """Weighted total YOLO loss and its unweighted components (scalar tensors)."""

    total: torch.Tensor
    box: torch.Tensor
    objectness: torch.Tensor
    classification: torch.Tensor


def yolo_loss(
    raw: torch.Tensor,
    targets: YoloTargets,
    anchors: Any,
    stride: float,
    num_classes: int,
    *,
    box_loss: Literal["mse", "iou", "giou"] = "mse",
    ignore_iou_threshold: float | None = 0.5,
    box_weight: float = 1.0,
    obj_weight: float = 1.0,
    cls_weight: float = 1.0,
) -> YoloLoss:
    """YOLOv3 loss of one head output (N, A*(5+C), H, W) against :func:`build_yolo_targets`.

    * box: over assigned slots, either MSE of (sigmoid(tx), sigmoid(ty), tw, th) against
      (``targets.txty``, ``targets.twth``) or ``1 - IoU`` / ``1 - GIoU`` of the decoded box
      against ``targets.boxes``;
    * objectness: BCE over all slots with target ``targets.mask``, except unassigned slots
      whose decoded box already overlaps some ground truth with IoU > ``ignore_iou_threshold``
      (YOLOv3's ignore rule; ``None`` disables it);
    * classification: per-class sigmoid BCE against one-hot targets over assigned slots.

    Each component is a mean over the slots it covers.
    """
    import torch

    anc = _anchors(anchors)
    n, _, h, w = raw.shape
    n_anchor = anc.shape[0]
    flat = raw.reshape(n, n_anchor, 5 + num_classes, h, w).permute(0, 3, 4, 1, 2)
    flat = flat.reshape(n, h * w * n_anchor, 5 + num_classes)
    if targets.mask.shape != flat.shape[:2]:
        raise ValueError(f"targets are for {targets.mask.shape}, raw gives {tuple(flat.shape[:2])}")
    positive = _like(targets.mask, flat, torch.bool)

    pred_xy = torch.sigmoid(flat[..., 0:2])
    pred_wh = flat[..., 2:4]
    if box_loss == "mse":
        pred = torch.cat([pred_xy, pred_wh], dim=-1)
        target = np.concatenate([targets.txty, targets.twth], axis=-1)
        box = box_mse_loss(pred, target, positive)
    elif box_loss in ("iou", "giou"):
        cells, anchor_idx = yolo_grid((h, w), n_anchor)
        centre = (pred_xy + _like(cells, flat)) * stride
        size = _like(anc[anchor_idx], flat) * torch.exp(pred_wh)
        pred_boxes = torch.cat([centre - size / 2, centre + size / 2], dim=-1)
        box = iou_loss(pred_boxes, targets.boxes, positive, box_loss)
    else:
        raise ValueError(f"unknown box loss {box_loss!r}")

    counted = np.ones(targets.mask.shape, dtype=bool)
    if ignore_iou_threshold is not None:
        decoded = decode_yolo_boxes(raw.detach().cpu().numpy(), anc, stride, num_classes)
        for i, gt in enumerate(targets.gt_boxes):
            if len(gt):
                overlap = box_iou(decoded[i], gt).max(axis=1) > ignore_iou_threshold
                counted[i] &= ~overlap | targets.mask[i]
    obj = objectness_loss(flat[..., 4], targets.mask.astype(np.float64), counted)
    cls = class_loss(flat[..., 5:], targets.classes, positive)
    total = box_weight * box + obj_weight * obj + cls_weight * cls
    return YoloLoss(total, box, obj, cls)


def dfl_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distribution focal loss of bin logits (..., R) against continuous targets (...) in
    ``[0, R-1)``: cross-entropy towards the two bins around the target, weighted by nearness."""
    import torch.nn.functional as F

    bins = logits.shape[-1]
    target = target.clamp(0, bins - 1 - 0.01)
    left = target.long()
    right = left + 1
    weight_left = right.to(target.dtype) - target
    flat = logits.reshape(-1, bins)
    ce_left = F.cross_entropy(flat, left.reshape(-1), reduction="none").view(left.shape)
    ce_right = F.cross_entropy(flat, right.reshape(-1), reduction="none").view(left.shape)
    return ce_left * weight_left + ce_right * (1 - weight_left)


class AnchorFreeLoss(NamedTuple):
    """Weighted total anchor-free loss (times the batch size, as YOLOv8) and its weighted parts."""

    total: torch.Tensor
    box: torch.Tensor
    classification: torch.Tensor
    dfl: torch.Tensor


def _padded_truths(gt_boxes: Any, gt_classes: Any, ref: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-image lists of boxes (G_i, 4) and classes (G_i,) as padded (N, G, .) and a mask."""
    import torch

    n = len(gt_boxes)
    most = max((len(b) for b in gt_boxes), default=0)
    boxes = torch.zeros(n, most, 4, dtype=ref.dtype, device=ref.device)
    classes = torch.zeros(n, most, dtype=torch.long, device=ref.device)
    valid = torch.zeros(n, most, dtype=torch.bool, device=ref.device)
    for i, (b, c) in enumerate(zip(gt_boxes, gt_classes, strict=True)):
        count = len(b)
        if count:
            boxes[i, :count] = _like(np.asarray(b, dtype=np.float64).reshape(-1, 4), ref)
            classes[i, :count] = _like(np.asarray(c).reshape(-1), ref, torch.long)
            valid[i, :count] = True
    return boxes, classes, valid


def anchor_free_loss(
    outputs: Sequence[torch.Tensor],
    gt_boxes: Sequence[Any],
    gt_classes: Sequence[Any],
    strides: Sequence[float],
    num_classes: int,
    reg_max: int = 16,
    *,
    topk: int = 10,
    alpha: float = 0.5,
    beta: float = 6.0,
    min_side: float | None = None,
    box_loss: Literal["ciou", "giou"] = "ciou",
    box_weight: float = 7.5,
    cls_weight: float = 0.5,
    dfl_weight: float = 1.5,
) -> AnchorFreeLoss:
    """The YOLOv8 training loss of anchor-free head maps (N, 4R+C, H, W), one per stride.

    ``gt_boxes[i]`` (G_i, 4) are image ``i``'s boxes, xyxy in input pixels, ``gt_classes[i]``
    their classes. Anchors are assigned with :func:`cnndsl.detection.assign.task_aligned_assign`
    on the detached predictions (``min_side`` as there); then, normalised by the sum of the
    target scores:

    * classification: sigmoid BCE of every anchor's class logits against the aligned scores;
    * box: ``1 - CIoU`` (or GIoU) of each positive's decoded box, weighted by its target score;
    * DFL: :func:`dfl_loss` of each positive's bins against its distances to the box edges.

    The weights default to Ultralytics' (box 7.5, cls 0.5, dfl 1.5); the total is their
    weighted sum times the batch size, as Ultralytics returns it.
    """
    import torch
    import torch.nn.functional as F

    from .anchor_free import anchor_points
    from .assign import ciou, task_aligned_assign

    if len(outputs) != len(strides):
        raise ValueError(f"{len(outputs)} maps but {len(strides)} strides")
    ref = outputs[0]
    n = ref.shape[0]
    channels = 4 * reg_max + num_classes
    for raw in outputs:
        if raw.ndim != 4 or raw.shape[1] != channels:
            raise ValueError(f"an anchor-free map must be (N, {channels}, H, W), "
                             f"got {tuple(raw.shape)}")
    flat = torch.cat([raw.reshape(n, channels, -1) for raw in outputs], dim=2).transpose(1, 2)
    distributions, logits = flat[..., : 4 * reg_max], flat[..., 4 * reg_max:]
    a = flat.shape[1]
    points_np, stride_np = anchor_points(
        [(int(raw.shape[2]), int(raw.shape[3])) for raw in outputs], strides)
    points, stride_of = _like(points_np, ref), _like(stride_np, ref)[:, None]

    bins = torch.arange(reg_max, dtype=ref.dtype, device=ref.device)
    distances = distributions.reshape(n, a, 4, reg_max).softmax(dim=-1) @ bins
    pred_boxes = torch.cat([points - distances[..., :2], points + distances[..., 2:]], dim=-1)

    boxes, classes, valid = _padded_truths(gt_boxes, gt_classes, ref)
    assigned = task_aligned_assign(
        logits.detach().sigmoid(), (pred_boxes.detach() * stride_of).to(ref.dtype),
        points * stride_of, classes, boxes, valid, topk=topk, alpha=alpha, beta=beta,
        min_side=min_side)
    score_sum = assigned.scores.sum().clamp(min=1)
    cls = F.binary_cross_entropy_with_logits(logits, assigned.scores, reduction="none")
    cls = cls.sum() / score_sum

    positive = assigned.positive
    if positive.any():
        weight = assigned.scores.sum(dim=-1)[positive]
        target = (assigned.boxes / stride_of)[positive]
        predicted = pred_boxes[positive]
        if box_loss == "ciou":
            quality = ciou(predicted, target)
        elif box_loss == "giou":
            quality = aligned_box_iou(predicted, target, generalized=True)
        else:
            raise ValueError(f"unknown box loss {box_loss!r}")
        box = ((1.0 - quality) * weight).sum() / score_sum
        point = points.expand(n, a, 2)[positive]
        edges = torch.cat([point - target[:, :2], target[:, 2:] - point], dim=-1)
        edges = edges.clamp(0, reg_max - 1 - 0.01)
        bins_logits = distributions[positive].reshape(-1, 4, reg_max)
        dfl = (dfl_loss(bins_logits, edges).mean(dim=-1) * weight).sum() / score_sum
    else:
        box = dfl = flat.sum() * 0.0
    box, cls, dfl = box * box_weight, cls * cls_weight, dfl * dfl_weight
    return AnchorFreeLoss((box + cls + dfl) * n, box, cls, dfl)
