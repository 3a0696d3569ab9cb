"""A synthetic detection dataset generated on the fly: filled shapes on a noisy background.

Each image holds 1 to ``max_objects`` rectangles, ellipses and triangles of random size, aspect
and colour on a smooth random background with pixel noise. Boxes are the tight boxes of what
was drawn, in xyxy pixels; classes index ``CLASSES``. Every sample is a pure function of
``(seed, index)``, so a held-out split is simply another seed, and nothing is stored.

    >>> data = ShapesDataset(size=128, seed=0)
    >>> sample = data[0]
    >>> sample.image.shape, sample.boxes.shape[1]
    ((3, 128, 128), 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from cnndsl.detection import box_iou, convert_boxes

CLASSES = ("rectangle", "ellipse", "triangle")


@dataclass(frozen=True)
class Sample:
    """One image with its objects."""

    image: np.ndarray
    """(3, H, W) float32 in [0, 1]."""
    boxes: np.ndarray
    """(M, 4) float64 xyxy pixels, tight around each drawn shape."""
    classes: np.ndarray
    """(M,) int64 index into ``CLASSES``."""


class ShapesDataset:
    """Rectangles, ellipses and triangles on noise; ``len`` is nominal (samples are generated)."""

    def __init__(self, size: int = 128, *, seed: int = 0, length: int = 10_000,
                 max_objects: int = 4, min_side: int = 12, max_side: int = 56,
                 noise: float = 0.08, max_overlap: float = 0.2):
        self.size = size
        self.seed = seed
        self.length = length
        self.max_objects = max_objects
        self.min_side = min_side
        self.max_side = min(max_side, size)
        self.noise = noise
        self.max_overlap = max_overlap

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return self.sample(index)

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        # A smooth colour field: a coarse random grid upsampled bilinearly by PIL.
        coarse = rng.uniform(0.15, 0.85, size=(4, 4, 3))
        field = Image.fromarray((coarse * 255).astype(np.uint8)).resize(
            (self.size, self.size), Image.Resampling.BILINEAR)
        return np.asarray(field, dtype=np.float32) / 255.0

    def _colour(self, rng: np.random.Generator, under: np.ndarray) -> tuple[int, int, int]:
        # Keep away from the local background so that every shape is visible.
        for _ in range(20):
            colour = rng.uniform(0.0, 1.0, size=3)
            if np.abs(colour - under).sum() > 0.6:
                break
        return tuple(int(c * 255) for c in colour)  # type: ignore[return-value]

    def _place(self, rng: np.random.Generator, placed: list[np.ndarray]) -> np.ndarray | None:
        for _ in range(30):
            w, h = rng.integers(self.min_side, self.max_side + 1, size=2)
            x1 = rng.integers(0, self.size - w + 1)
            y1 = rng.integers(0, self.size - h + 1)
            box = np.array([x1, y1, x1 + w, y1 + h], dtype=np.float64)
            if not placed or box_iou(box, np.array(placed)).max() <= self.max_overlap:
                return box
        return None

    def sample(self, index: int) -> Sample:
        """The image and objects of sample ``index`` (deterministic in seed and index)."""
        rng = np.random.default_rng([self.seed, index])
        background = self._background(rng)
        canvas = Image.fromarray((background * 255).astype(np.uint8))
        draw = ImageDraw.Draw(canvas)
        boxes: list[np.ndarray] = []
        classes: list[int] = []
        for _ in range(int(rng.integers(1, self.max_objects + 1))):
            box = self._place(rng, boxes)
            if box is None:
                continue
            cls = int(rng.integers(len(CLASSES)))
            x1, y1, x2, y2 = box
            centre = background[int((y1 + y2) / 2), int((x1 + x2) / 2)]
            colour = self._colour(rng, centre)
            # PIL's shape corners are inclusive pixel coordinates: the last pixel is x2 - 1.
            corners = [x1, y1, x2 - 1, y2 - 1]
            if cls == 0:
                draw.rectangle(corners, fill=colour)
            elif cls == 1:
                draw.ellipse(corners, fill=colour)
            else:
                box = self._triangle(rng, draw, box, colour)
            boxes.append(box)
            classes.append(cls)
        image = np.asarray(canvas, dtype=np.float32) / 255.0
        image = image + rng.normal(0.0, self.noise, size=image.shape).astype(np.float32)
        image = np.clip(image, 0.0, 1.0).transpose(2, 0, 1)
        return Sample(np.ascontiguousarray(image),
                      np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
                      np.asarray(classes, dtype=np.int64))

    @staticmethod
    def _triangle(rng: np.random.Generator, draw: ImageDraw.ImageDraw, box: np.ndarray,
                  colour: tuple[int, int, int]) -> np.ndarray:
        """A triangle spanning the box: one vertex on the top edge, two on the bottom corners
        (possibly flipped vertically); returns its tight box."""
        x1, y1, x2, y2 = box
        apex = x1 + rng.uniform(0.2, 0.8) * (x2 - x1)
        top, bottom = (y1, y2 - 1) if rng.random() < 0.5 else (y2 - 1, y1)
        draw.polygon([(apex, top), (x1, bottom), (x2 - 1, bottom)], fill=colour)
        return box

    def batch(self, indices: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray],
                                                      list[np.ndarray]]:
        """Images stacked to (N, 3, H, W), with per-image boxes (xyxy) and classes."""
        samples = [self[i] for i in indices]
        return (np.stack([s.image for s in samples]), [s.boxes for s in samples],
                [s.classes for s in samples])


def to_coco(boxes: Sequence[np.ndarray], classes: Sequence[np.ndarray],
            first_id: int = 0) -> list[dict]:
    """Ground truths as COCO records (``bbox`` is [x, y, w, h]); image ids count from first_id."""
    records = []
    for offset, (image_boxes, image_classes) in enumerate(zip(boxes, classes, strict=True)):
        xywh = convert_boxes(np.asarray(image_boxes).reshape(-1, 4), "xyxy", "xywh")
        for box, cls in zip(xywh.tolist(), image_classes, strict=True):
            records.append({"image_id": first_id + offset, "category_id": int(cls),
                            "bbox": box})
    return records


if __name__ == "__main__":
    # Save a few samples with their boxes, to look at the data: python shapes_dataset.py out.png
    import sys

    data = ShapesDataset(seed=0)
    tiles = []
    for i in range(8):
        s = data[i]
        tile = Image.fromarray((s.image.transpose(1, 2, 0) * 255).astype(np.uint8))
        pen = ImageDraw.Draw(tile)
        for box, cls in zip(s.boxes, s.classes, strict=True):
            pen.rectangle(list(box - [0, 0, 1, 1]), outline=(255, 255, 255))
            pen.text((box[0] + 2, box[1] + 1), CLASSES[cls][0], fill=(255, 255, 255))
        tiles.append(tile)
    sheet = Image.new("RGB", (data.size * 4, data.size * 2))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % 4) * data.size, (i // 4) * data.size))
    sheet.save(sys.argv[1] if len(sys.argv) > 1 else "shapes.png")
