"""Detection losses (torch)."""

from __future__ import annotations

import numpy as np
import pytest

from cnndsl.detection import (
    YoloTargets,
    aligned_box_iou,
    box_mse_loss,
    build_yolo_targets,
    class_loss,
    giou_loss,
    iou_loss,
    objectness_loss,
    yolo_flatten,
    yolo_loss,
    yolo_unflatten,
)

pytest.importorskip("torch")
import torch

ANCHORS = np.array([[10.0, 13.0], [33.0, 23.0], [62.0, 45.0]])
STRIDE = 8.0
GRID = (6, 5)
C = 3


def _f(x: torch.Tensor) -> float:
    """Scalar value of a loss tensor (detached: float() on a grad tensor warns)."""
    return float(x.detach())


def _targets() -> YoloTargets:
    gt = [
        np.array([[12.0, 9.0, 30.0, 20.0], [30.0, 40.0, 9.0, 14.0]]),
        np.zeros((0, 4)),
    ]
    return build_yolo_targets(gt, [np.array([2, 0]), np.array([])], GRID, STRIDE, ANCHORS, C)


def _perfect_raw(t: YoloTargets) -> torch.Tensor:
    """Head output whose decoding equals the targets (saturated logits)."""
    flat = np.zeros((*t.mask.shape, 5 + C))
    flat[..., :4] = t.raw_boxes()
    flat[..., 4] = np.where(t.mask, 30.0, -30.0)
    flat[..., 5:] = -30.0
    n, s = np.nonzero(t.mask)
    flat[n, s, 5 + t.classes[n, s]] = 30.0
    return torch.tensor(yolo_unflatten(flat, GRID, 3))


@pytest.mark.parametrize("box_loss", ["mse", "iou", "giou"])
def test_yolo_loss_perfect_prediction_is_near_zero(box_loss: str) -> None:
    t = _targets()
    loss = yolo_loss(_perfect_raw(t), t, ANCHORS, STRIDE, C, box_loss=box_loss)  # type: ignore[arg-type]
    for part in loss:
        assert torch.isfinite(part) and _f(part) < 1e-6


@pytest.mark.parametrize("box_loss", ["mse", "iou", "giou"])
def test_yolo_loss_gradient_flows(box_loss: str) -> None:
    t = _targets()
    gen = torch.Generator().manual_seed(0)
    raw = torch.randn(2, 3 * (5 + C), *GRID, generator=gen, requires_grad=True)
    loss = yolo_loss(raw, t, ANCHORS, STRIDE, C, box_loss=box_loss)  # type: ignore[arg-type]
    assert all(torch.isfinite(part) and _f(part) > 0 for part in loss)
    loss.total.backward()
    assert raw.grad is not None and torch.isfinite(raw.grad).all()
    grad = yolo_flatten(raw.grad.numpy(), 3, C)
    # Box and class gradients only reach assigned slots; objectness reaches the rest too.
    assert np.abs(grad[..., :4][t.mask]).sum() > 0
    assert np.abs(grad[..., :4][~t.mask]).sum() == 0
    assert np.abs(grad[..., 5:][~t.mask]).sum() == 0
    assert np.abs(grad[..., 4][~t.mask]).sum() > 0


def test_yolo_loss_without_objects() -> None:
    empty = build_yolo_targets([np.zeros((0, 4))], [np.array([])], GRID, STRIDE, ANCHORS, C)
    raw = torch.zeros(1, 3 * (5 + C), *GRID, requires_grad=True)
    loss = yolo_loss(raw, empty, ANCHORS, STRIDE, C)
    assert _f(loss.box) == 0.0 and _f(loss.classification) == 0.0
    assert _f(loss.objectness) == pytest.approx(np.log(2.0))
    loss.total.backward()
    assert raw.grad is not None and torch.isfinite(raw.grad).all()


def test_yolo_loss_ignores_good_unassigned_predictions() -> None:
    t = _targets()
    raw = _perfect_raw(t)
    flat = yolo_flatten(raw.numpy(), 3, C)
    # Copy an assigned slot's box into a neighbouring anchor of the same cell and claim "object"
    # there: it overlaps the gt strongly, so the ignore rule spares it from the objectness loss.
    (slot,) = np.flatnonzero(t.mask[0])[:1]
    other = slot - slot % 3 + (slot + 1) % 3
    anchor_ratio = ANCHORS[slot % 3] / ANCHORS[other % 3]
    flat[0, other, :2] = flat[0, slot, :2]
    flat[0, other, 2:4] = flat[0, slot, 2:4] + np.log(anchor_ratio)
    flat[0, other, 4] = 30.0
    raw2 = torch.tensor(yolo_unflatten(flat, GRID, 3))
    assert _f(yolo_loss(raw2, t, ANCHORS, STRIDE, C).objectness) < 1e-6
    punished = yolo_loss(raw2, t, ANCHORS, STRIDE, C, ignore_iou_threshold=None).objectness
    assert _f(punished) > 0.1


def test_elementary_losses() -> None:
    logits = torch.tensor([[20.0, -20.0], [-20.0, 20.0]], requires_grad=True)
    assert _f(objectness_loss(logits, [[1.0, 0.0], [0.0, 1.0]])) < 1e-8
    assert _f(class_loss(logits, [0, 1])) < 1e-8
    assert _f(class_loss(logits, np.eye(2))) < 1e-8
    # -1 (no class) means an all-negative target row; mask drops rows entirely.
    assert _f(class_loss(logits, [-1, 1], mask=[False, True])) < 1e-8
    assert _f(class_loss(logits, [1, 0])) > 10
    boxes = torch.tensor([[0.0, 0, 10, 10], [5, 5, 8, 9]], requires_grad=True)
    assert _f(box_mse_loss(boxes, boxes.detach().numpy())) == 0.0
    assert _f(iou_loss(boxes, boxes.detach())) == pytest.approx(0.0, abs=1e-6)
    assert _f(giou_loss(boxes, boxes.detach())) == pytest.approx(0.0, abs=1e-6)
    # Empty selections give a zero that still belongs to the graph.
    empty = iou_loss(boxes, boxes.detach(), mask=[False, False])
    assert _f(empty) == 0.0 and empty.requires_grad
    with pytest.raises(ValueError):
        iou_loss(boxes, boxes, kind="diou")  # type: ignore[arg-type]


def test_giou_loss_has_gradient_without_overlap() -> None:
    pred = torch.tensor([[0.0, 0, 10, 10]], requires_grad=True)
    target = torch.tensor([[20.0, 0, 30, 10]])
    assert _f(iou_loss(pred, target)) == pytest.approx(1.0)
    loss = giou_loss(pred, target)
    assert _f(loss) == pytest.approx(1 + 10 / 30)
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    # Matches the numpy pairwise implementation.
    from cnndsl.detection import generalized_box_iou

    expected = generalized_box_iou(pred.detach().numpy(), target.numpy())[0, 0]
    assert _f(aligned_box_iou(pred, target, generalized=True)) == pytest.approx(expected)
