"""Anchor-free decoding, task-aligned assignment and the YOLOv8 loss, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnndsl.detection import (
    anchor_points,
    box_to_distance,
    decode_anchor_free,
    dfl_expectation,
    distance_to_box,
    postprocess_anchor_free,
)

R, C = 4, 2


def _one_hot_bins(bins: list[int], logit: float = 40.0) -> np.ndarray:
    """Box-branch logits (4R,) that put (almost) all mass of side k into bin ``bins[k]``."""
    out = np.zeros((4, R))
    for side, b in enumerate(bins):
        out[side, b] = logit
    return out.reshape(-1)


def test_anchor_points_are_cell_centres_row_major() -> None:
    points, strides = anchor_points([(2, 3), (1, 1)], [8, 16])
    assert points.tolist() == [[0.5, 0.5], [1.5, 0.5], [2.5, 0.5],
                               [0.5, 1.5], [1.5, 1.5], [2.5, 1.5], [0.5, 0.5]]
    assert strides.tolist() == [8] * 6 + [16]


def test_dfl_expectation_of_uniform_and_peaked_bins() -> None:
    assert dfl_expectation(np.zeros(R)) == pytest.approx(1.5)
    assert dfl_expectation(_one_hot_bins([3, 0, 1, 2]).reshape(4, R)) == pytest.approx(
        [3, 0, 1, 2], abs=1e-12)
    # Two equal bins: the expectation is halfway.
    assert dfl_expectation(np.array([0.0, 5.0, 5.0, 0.0]) * 10) == pytest.approx(1.5)


def test_distance_box_round_trip() -> None:
    points = np.array([[2.5, 3.5], [0.5, 0.5]])
    boxes = np.array([[1.0, 2.0, 4.0, 7.0], [0.0, 0.0, 3.0, 1.0]])
    d = box_to_distance(points, boxes)
    assert d.tolist() == [[1.5, 1.5, 1.5, 3.5], [0.5, 0.5, 2.5, 0.5]]
    np.testing.assert_array_equal(distance_to_box(points, d), boxes)
    assert box_to_distance(points, boxes, limit=2.0).max() == 2.0


def test_decode_hand_computed_grid() -> None:
    """Two scales (2x2 at stride 8, 1x1 at stride 16): every box worked out by hand."""
    fine = np.zeros((1, 4 * R + C, 2, 2))
    coarse = np.zeros((1, 4 * R + C, 1, 1))
    fine[0, : 4 * R, 0, 1] = _one_hot_bins([1, 0, 2, 3])   # cell (row 0, col 1): point (1.5, .5)
    fine[0, 4 * R + 1, 0, 1] = 2.0                          # class 1 logit
    coarse[0, : 4 * R, 0, 0] = _one_hot_bins([0, 0, 1, 1])  # point (0.5, 0.5) at stride 16
    decoded = decode_anchor_free([fine, coarse], [8, 16], num_classes=C, reg_max=R)
    assert decoded.boxes.shape == (1, 5, 4) and decoded.scores.shape == (1, 5, C)
    # (1.5 - 1, 0.5 - 0, 1.5 + 2, 0.5 + 3) * 8
    np.testing.assert_allclose(decoded.boxes[0, 1], [4, 4, 28, 28], atol=1e-9)
    # (0.5 - 0, 0.5 - 0, 0.5 + 1, 0.5 + 1) * 16
    np.testing.assert_allclose(decoded.boxes[0, 4], [8, 8, 24, 24], atol=1e-9)
    # Zero logits: uniform bins, 1.5 cells each way from (0.5, 1.5) at stride 8.
    np.testing.assert_allclose(decoded.boxes[0, 2], [-8, 0, 16, 24])
    assert decoded.scores[0, 1, 1] == pytest.approx(1 / (1 + math.exp(-2)))
    assert decoded.scores[0, 0].tolist() == [0.5, 0.5]


def test_decode_rejects_wrong_channels() -> None:
    with pytest.raises(ValueError, match="must be"):
        decode_anchor_free([np.zeros((1, 10, 2, 2))], [8], num_classes=C, reg_max=R)


def test_postprocess_threshold_is_strict_and_nms_per_class() -> None:
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60.0]]])
    scores = np.array([[[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.25, 0.0]]])
    (det,) = postprocess_anchor_free((boxes, scores), score_threshold=0.25, iou_threshold=0.5)
    # Box 1 is suppressed by box 0 (same class, IoU 0.81); box 2 is another class; box 3 is
    # exactly on the threshold, which must be exceeded.
    assert det.scores.tolist() == [0.9, 0.7]
    assert det.classes.tolist() == [0, 1]
    (agnostic,) = postprocess_anchor_free((boxes, scores), iou_threshold=0.5,
                                          class_agnostic=True)
    assert agnostic.scores.tolist() == [0.9]


torch = pytest.importorskip("torch")

from cnndsl.detection import anchor_free_loss, ciou, dfl_loss, task_aligned_assign  # noqa: E402


def test_ciou_hand_computed() -> None:
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
    iou = 2 / 6
    rho2_over_c2 = 1.0 / (3**2 + 2**2)  # centre distance 1, enclosing box 3 x 2
    assert float(ciou(a, b)) == pytest.approx(iou - rho2_over_c2, abs=1e-6)
    # Different aspect ratios add the v * alpha term.
    c = torch.tensor([[0.0, 0.0, 4.0, 1.0]])
    d = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    iou = 1 / 4
    rho2 = 1.5**2
    c2 = 4**2 + 1**2
    v = 4 / math.pi**2 * (math.atan(1.0) - math.atan(4.0)) ** 2
    alpha = v / (v - iou + 1)
    assert float(ciou(c, d)) == pytest.approx(iou - rho2 / c2 - v * alpha, abs=1e-6)


def test_dfl_loss_hand_computed() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    target = torch.tensor([1.25])
    log_softmax = torch.log_softmax(logits, dim=-1)[0]
    expected = -0.75 * float(log_softmax[1]) - 0.25 * float(log_softmax[2])
    assert float(dfl_loss(logits, target)) == pytest.approx(expected, rel=1e-6)
    # Targets at or past the last bin are clipped just inside it.
    at_end = float(dfl_loss(logits, torch.tensor([5.0])))
    assert at_end == pytest.approx(-0.01 * float(log_softmax[2]) - 0.99 * float(log_softmax[3]),
                                   rel=1e-5)


def _points() -> torch.Tensor:
    return torch.tensor([[4.0, 4.0], [12.0, 4.0], [4.0, 12.0], [12.0, 12.0]])


def test_assignment_topk_and_inside() -> None:
    """One box covering anchors 0 and 1: with topk=1 only the better-aligned one is positive."""
    points = _points()
    gt = torch.tensor([[[0.0, 0.0, 16.0, 8.0]]])
    pred = torch.tensor([[[0.0, 0.0, 8.0, 8.0], [0.0, 0.0, 16.0, 8.0],
                          [0.0, 8.0, 8.0, 16.0], [8.0, 8.0, 16.0, 16.0]]])
    scores = torch.full((1, 4, C), 0.5)
    out = task_aligned_assign(scores, pred, points, torch.tensor([[1]]), gt,
                              torch.tensor([[True]]), topk=1)
    assert out.positive.tolist() == [[False, True, False, False]]
    assert out.boxes[0, 1].tolist() == [0.0, 0.0, 16.0, 8.0]
    # Anchor 1 predicts the box exactly: IoU 1, so its class target is the full 1.
    assert out.scores[0, 1].tolist() == pytest.approx([0.0, 1.0], abs=1e-6)
    out = task_aligned_assign(scores, pred, points, torch.tensor([[1]]), gt,
                              torch.tensor([[True]]), topk=10)
    assert out.positive.tolist() == [[True, True, False, False]]  # anchors 2, 3 are outside
    # Anchor 0's target is its alignment over the best one's (CIoU 1, same score): CIoU^6.
    # (0, 0, 8, 8) against (0, 0, 16, 8): IoU 1/2, centres 4 apart in a 16 x 8 hull, aspect 1:2.
    v = 4 / math.pi**2 * (math.atan(2.0) - math.atan(1.0)) ** 2
    ciou_0 = 0.5 - 16 / (16**2 + 8**2) - v * v / (v - 0.5 + 1)
    assert float(out.scores[0, 0, 1]) == pytest.approx(ciou_0**6, rel=1e-4)


def test_assignment_several_truths_keep_the_best_overlap() -> None:
    points = _points()
    gts = torch.tensor([[[0.0, 0.0, 9.0, 9.0], [2.0, 2.0, 30.0, 30.0]]])
    pred = torch.tensor([[[0.0, 0.0, 8.0, 8.0]] * 4])
    scores = torch.full((1, 4, C), 0.5)
    out = task_aligned_assign(scores, pred, points, torch.tensor([[0, 1]]), gts,
                              torch.tensor([[True, True]]))
    # Anchor 0 lies in both boxes; it overlaps the first far more, so it goes to class 0.
    assert bool(out.positive[0, 0]) and int(out.gt_index[0, 0]) == 0
    assert out.scores[0, 0, 1] == 0
    # The padding row of an image with fewer truths assigns nothing.
    out = task_aligned_assign(scores, pred, points, torch.tensor([[0, 1]]), gts,
                              torch.tensor([[True, False]]))
    assert out.positive.tolist() == [[True, False, False, False]]


def test_loss_hand_computed() -> None:
    """A 2x2 grid at stride 8, zero logits, one truth (0, 0, 8, 8) of class 1.

    Zero logits decode every anchor to its point +- 1.5 cells; only anchor 0 (at (4, 4)) lies
    inside the truth; its box (-8, -8, 16, 16) shares the centre and aspect, so CIoU = IoU = 1/9.
    """
    raw = torch.zeros(1, 4 * R + C, 2, 2, requires_grad=True)
    loss = anchor_free_loss([raw], [np.array([[0.0, 0.0, 8.0, 8.0]])], [np.array([1])],
                            strides=[8], num_classes=C, reg_max=R)
    iou = 64 / (576 + 1e-7)
    metric = 0.5**0.5 * iou**6
    quality = metric * iou / (metric + 1e-9)
    score_sum = 1.0  # max(quality, 1)
    cls = 8 * math.log(2) / score_sum  # BCE of logit 0 is ln 2 whatever the target
    box = (1 - iou) * quality / score_sum
    dfl = math.log(R) * quality / score_sum  # uniform bins: CE to either neighbour is ln R
    assert float(loss.classification.detach()) == pytest.approx(0.5 * cls, rel=1e-5)
    assert float(loss.box.detach()) == pytest.approx(7.5 * box, rel=1e-4)
    assert float(loss.dfl.detach()) == pytest.approx(1.5 * dfl, rel=1e-5)
    assert float(loss.total.detach()) == pytest.approx(0.5 * cls + 7.5 * box + 1.5 * dfl, rel=1e-5)
    loss.total.backward()
    assert raw.grad is not None and torch.isfinite(raw.grad).all()
    assert raw.grad[0, : 4 * R, 0, 0].abs().sum() > 0   # the positive anchor's bins learn
    assert raw.grad[0, : 4 * R, 1, 1].abs().sum() == 0  # a background anchor's do not


def test_loss_without_objects_is_classification_only() -> None:
    raw = torch.randn(2, 4 * R + C, 2, 2, generator=torch.Generator().manual_seed(0),
                      requires_grad=True)
    loss = anchor_free_loss([raw], [np.zeros((0, 4))] * 2, [np.zeros(0)] * 2, strides=[8],
                            num_classes=C, reg_max=R)
    assert float(loss.box.detach()) == 0 and float(loss.dfl.detach()) == 0
    logits = raw.detach()[:, 4 * R:]
    expected = torch.nn.functional.softplus(logits).sum()  # BCE against 0
    assert float(loss.classification.detach()) == pytest.approx(0.5 * float(expected), rel=1e-5)
    loss.total.backward()
    assert torch.isfinite(raw.grad).all()


def test_loss_decoding_agrees_with_numpy() -> None:
    """The loss' predicted boxes for positives are the numpy decoder's (seeded random maps)."""
    gen = torch.Generator().manual_seed(3)
    maps = [torch.randn(1, 4 * R + C, 4, 4, generator=gen),
            torch.randn(1, 4 * R + C, 2, 2, generator=gen)]
    for m in maps:  # equal class scores: the alignment ranks anchors by CIoU alone
        m[:, 4 * R:] = 0
    decoded = decode_anchor_free([m.numpy() for m in maps], [8, 16], num_classes=C, reg_max=R)
    # A truth equal to the decoded box of anchor 5 (its point is inside: distances are > 0):
    # anchor 5 aligns best (CIoU 1) and is the one positive, so the box loss is ~ 0, which
    # holds only if the loss decodes anchor 5 as numpy does.
    truth = decoded.boxes[0, 5]
    loss = anchor_free_loss(maps, [truth[None]], [np.array([0])], strides=[8, 16],
                            num_classes=C, reg_max=R, topk=1)
    assert float(loss.box.detach()) == pytest.approx(0.0, abs=1e-4)


def test_assignment_min_side_widens_small_truths() -> None:
    """A 2-pixel truth holds no anchor point; widened to 8 pixels about its centre it holds one."""
    points = _points()
    gt = torch.tensor([[[5.0, 5.0, 7.0, 7.0]]])
    pred = torch.tensor([[[0.0, 0.0, 8.0, 8.0]] * 4])
    scores = torch.full((1, 4, C), 0.5)
    args = (scores, pred, points, torch.tensor([[0]]), gt, torch.tensor([[True]]))
    assert not task_aligned_assign(*args).positive.any()
    assert task_aligned_assign(*args, min_side=8.0).positive.tolist() == [
        [True, False, False, False]]
