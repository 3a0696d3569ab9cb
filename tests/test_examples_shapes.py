"""The synthetic-shapes example: valid samples, and a few training steps with a finite loss."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

from shapes_dataset import CLASSES, ShapesDataset, to_coco


def test_samples_are_deterministic_and_boxes_valid() -> None:
    data = ShapesDataset(64, seed=3, length=40, min_side=8, max_side=30)
    total = 0
    for index in range(len(data)):
        sample = data[index]
        assert sample.image.shape == (3, 64, 64) and sample.image.dtype == np.float32
        assert sample.image.min() >= 0.0 and sample.image.max() <= 1.0
        boxes = sample.boxes
        assert len(boxes) == len(sample.classes) >= 1
        assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2:] <= 64)
        sides = boxes[:, 2:] - boxes[:, :2]
        assert np.all(sides >= 8) and np.all(sides <= 30)
        assert set(sample.classes.tolist()) <= set(range(len(CLASSES)))
        total += len(boxes)
    again = data[7]
    np.testing.assert_array_equal(again.image, data[7].image)
    assert not np.array_equal(data[7].image, ShapesDataset(64, seed=4)[7].image)
    assert total > 40  # several objects per image on average
    assert {r["category_id"] for r in to_coco([data[0].boxes], [data[0].classes])} <= {0, 1, 2}
    with pytest.raises(IndexError):
        data[40]


def test_shapes_are_drawn_inside_their_boxes() -> None:
    # On a flat background without noise, every changed pixel lies inside some box, and each
    # box's border rows and columns hold some of its shape (the boxes are tight).
    data = ShapesDataset(64, seed=1, noise=0.0, max_overlap=0.0)
    for index in range(10):
        sample = data[index]
        # The background is the first thing drawn from the sample's generator.
        rng_image = data._background(np.random.default_rng([1, index]))
        changed = np.abs(sample.image.transpose(1, 2, 0) - rng_image).sum(axis=2) > 0.05
        inside = np.zeros_like(changed)
        for x1, y1, x2, y2 in sample.boxes.astype(int):
            inside[y1:y2, x1:x2] = True
            shape = changed[y1:y2, x1:x2]
            assert shape[0].any() and shape[-1].any() and shape[:, 0].any() and shape[:, -1].any()
        assert not (changed & ~inside).any()


def test_two_training_steps_have_a_finite_loss() -> None:
    torch = pytest.importorskip("torch")
    import train_yolo_shapes as example

    import cnndsl

    torch.manual_seed(0)
    data = ShapesDataset(64, seed=0, min_side=8, max_side=40)
    network = example.build_network(64, width=2, data=data, samples=100)
    heads = example.heads(network)
    assert [h.stride for h in heads] == [32, 16]
    assert all(h.classes == len(CLASSES) for h in heads)
    model = cnndsl.to_torch(network)
    threads = torch.get_num_threads()
    # A model this small gains nothing from threads, and spinning workers stall on a busy box.
    torch.set_num_threads(1)
    try:
        losses = example.train(model, network, data, steps=2, batch=4, progress=False)
        images = data.batch(range(4))[0]
        detections = example.predict(model, network, images)
    finally:
        torch.set_num_threads(threads)
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert len(detections) == 4 and all(len(d.boxes) == len(d.scores) for d in detections)
