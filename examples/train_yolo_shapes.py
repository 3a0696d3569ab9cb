"""Train specs/yolo_tiny.cnn on synthetic shapes on a CPU, then report mAP@0.5 and draw boxes.

    python examples/train_yolo_shapes.py          # trains for at most 8 minutes, then evaluates
    python examples/train_yolo_shapes.py --steps 200 --eval-images 100 --out /tmp/quick.png

The network is the spec itself, loaded at a 128 x 128 input with 3 classes and a quarter of
yolov3-tiny's width (``--set width=8``), and anchors from a k-means (1 - IoU distance) over
the training boxes: the three larger on the stride-32 grid, the three smaller on the stride-16
grid. Each object is assigned to its best-shaped anchor in each head (``head_targets``); the
loss is cnndsl.detection.yolo_loss (GIoU box loss, objectness and class BCE with YOLOv3's
ignore rule over all ground truths). Training stops after ``--steps`` or ``--minutes``,
whichever comes first, with the learning-rate schedule fitted to that budget. Evaluation
decodes both heads with decode_yolo, post-processes with postprocess (NMS per class) and
scores with coco_map and voc_map on held-out images (another seed of the generator).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

# Spinning OpenMP workers slow training several-fold when the cores are shared with other
# processes; passive waiting costs nothing on an idle machine. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

from shapes_dataset import CLASSES, ShapesDataset, to_coco

import cnndsl
from cnndsl import ir
from cnndsl.detection import (
    anchor_shape_iou,
    build_yolo_targets,
    coco_map,
    convert_boxes,
    decode_yolo,
    detections_to_coco,
    postprocess,
    voc_map,
    yolo_loss,
)

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "yolo_tiny.cnn"
COLOURS = ((255, 80, 80), (80, 255, 80), (90, 160, 255))


def kmeans_anchors(boxes_wh: np.ndarray, k: int = 6, seed: int = 0,
                   iterations: int = 50) -> np.ndarray:
    """k anchor sizes (w, h) by k-means with distance 1 - IoU, sorted by area."""
    rng = np.random.default_rng(seed)
    centres = boxes_wh[rng.choice(len(boxes_wh), size=k, replace=False)]
    for _ in range(iterations):
        nearest = np.argmax(anchor_shape_iou(boxes_wh, centres), axis=1)
        updated = np.array([np.median(boxes_wh[nearest == i], axis=0)
                            if np.any(nearest == i) else centres[i] for i in range(k)])
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres[np.argsort(centres.prod(axis=1))]


def build_network(size: int = 128, width: int = 8, anchors: np.ndarray | None = None,
                  data: ShapesDataset | None = None, samples: int = 1000) -> ir.Network:
    """yolo_tiny.cnn at ``size`` with 3 classes, ``width`` and anchors (by k-means over the
    boxes of ``samples`` images of ``data`` if not given)."""
    if anchors is None:
        data = data or ShapesDataset(size)
        wh = np.concatenate([data.sample(i).boxes for i in range(samples)])
        wh = wh[:, 2:] - wh[:, :2]
        anchors = kmeans_anchors(wh)
    def pairs(rows: np.ndarray) -> tuple[tuple[float, float], ...]:
        return tuple((round(float(w), 1), round(float(h), 1)) for w, h in rows)

    params = {"classes": len(CLASSES), "width": width, "anchors16": pairs(anchors[:3]),
              "anchors32": pairs(anchors[3:])}
    result = cnndsl.check(SPEC, input=f"3x{size}x{size}", params=params)
    # The spec's expect lines describe its defaults (80 classes, 416 x 416), so they fail here;
    # anything else is a real error.
    errors = [d for d in result.diagnostics
              if d.severity == "error" and d.code.slug != "expect-failed"]
    if errors or result.network is None:
        raise cnndsl.CnnError(errors or result.diagnostics)
    return result.network


def heads(network: ir.Network) -> list[ir.DetectHead]:
    """The detect heads, in the order of the network's outputs."""
    by_name = {node.name: node for node in network.nodes}
    found = []
    for target in network.outputs.values():
        node = by_name[target]
        if isinstance(node, ir.DetectHead):
            found.append(node)
    return found


def head_targets(network: ir.Network, boxes: list[np.ndarray], classes: list[np.ndarray],
                 every_head: bool = True) -> list[Any]:
    """Targets per head: each box goes to its best anchor in every head (``every_head``: more
    positives, faster learning; NMS removes the duplicates), or, as in YOLOv3, only to the
    head that holds its best anchor over all heads."""
    detect = heads(network)
    all_anchors = np.concatenate([np.asarray(h.anchors) for h in detect])
    owner = np.concatenate([[i] * len(h.anchors) for i, h in enumerate(detect)])
    gt_xyxy = [b.reshape(-1, 4) for b in boxes]
    targets = []
    for index, head in enumerate(detect):
        assert head.shape is not None
        grid = (int(head.shape[1]), int(head.shape[2]))
        mine_boxes, mine_classes = [], []
        for image_boxes, image_classes in zip(boxes, classes, strict=True):
            cxcywh = convert_boxes(image_boxes.reshape(-1, 4), "xyxy", "cxcywh")
            best = np.argmax(anchor_shape_iou(cxcywh[:, 2:], all_anchors), axis=1)
            keep = (owner[best] == index) | every_head
            mine_boxes.append(cxcywh[keep])
            mine_classes.append(image_classes[keep])
        target = build_yolo_targets(mine_boxes, mine_classes, grid, head.stride, head.anchors,
                                    head.classes)
        target.gt_boxes = gt_xyxy  # the ignore rule looks at every object, not only this head's
        targets.append(target)
    return targets


def _bounded_sizes(raw: torch.Tensor, head: ir.DetectHead, limit: float = 4.0) -> torch.Tensor:
    """``raw`` with tw, th clamped to +-limit: exp() of a runaway logit would make the GIoU
    of a box infinite (and the loss NaN); e^4 = 55 times an anchor is plenty."""
    n, _, h, w = raw.shape
    per_anchor = raw.view(n, len(head.anchors), 5 + head.classes, h, w)
    bounded = torch.cat([per_anchor[:, :, :2], per_anchor[:, :, 2:4].clamp(-limit, limit),
                         per_anchor[:, :, 4:]], dim=2)
    return bounded.view_as(raw)


def detection_loss(network: ir.Network, outputs: dict[str, torch.Tensor],
                   boxes: list[np.ndarray], classes: list[np.ndarray]) -> torch.Tensor:
    """Sum over heads of the YOLOv3 loss (GIoU box, objectness, classes)."""
    total = torch.zeros(())
    targets = head_targets(network, boxes, classes)
    for (name, raw), head, target in zip(outputs.items(), heads(network), targets, strict=True):
        assert name in network.outputs
        loss = yolo_loss(_bounded_sizes(raw, head), target, head.anchors, head.stride, head.classes,
                         box_loss="giou", box_weight=2.0, obj_weight=10.0, cls_weight=1.0)
        total = total + loss.total
    return total


def train(model: torch.nn.Module, network: ir.Network, data: ShapesDataset, *, steps: int,
          batch: int = 16, lr: float = 2e-3, time_limit: float = math.inf,
          progress: bool = True) -> list[float]:
    """AdamW with warm-up and cosine decay; returns the loss of every step.

    The schedule follows whichever runs out first, the steps or ``time_limit`` seconds, so that
    a slower (or busier) machine still anneals the learning rate to zero within the limit.
    """
    from tqdm import tqdm

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    warmup = 0.03
    losses: list[float] = []
    start = time.perf_counter()
    model.train()
    bar = tqdm(total=steps, desc="train", disable=not progress, unit="step")
    for step in range(steps):
        done = max(step / steps, (time.perf_counter() - start) / time_limit)
        if done >= 1.0:
            bar.write(f"time limit reached after {step} steps")
            break
        factor = done / warmup if done < warmup else 0.5 * (
            1 + math.cos(math.pi * (done - warmup) / (1 - warmup)))
        for group in optimizer.param_groups:
            group["lr"] = lr * max(factor, 0.01)
        images, boxes, classes = data.batch(range(step * batch, (step + 1) * batch))
        outputs = model(torch.from_numpy(images))
        loss = detection_loss(network, outputs, boxes, classes)
        if not torch.isfinite(loss):
            bar.write(f"step {step}: non-finite loss, batch skipped")
            continue
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        bar.update()
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
    bar.close()
    return losses


@torch.no_grad()
def predict(model: torch.nn.Module, network: ir.Network, images: np.ndarray,
            score_threshold: float = 0.01, batch: int = 64) -> list[Any]:
    """Per-image detections (boxes xyxy, scores, classes) after decoding and NMS."""
    model.eval()
    results = []
    for start in range(0, len(images), batch):
        outputs = model(torch.from_numpy(images[start:start + batch]))
        decoded = [decode_yolo(outputs[name].numpy(), head.anchors, head.stride, head.classes)
                   for name, head in zip(outputs, heads(network), strict=True)]
        merged = [np.concatenate([getattr(d, field) for d in decoded], axis=1)
                  for field in ("boxes", "objectness", "class_probs")]
        results += postprocess(merged, score_threshold=score_threshold, iou_threshold=0.45)
    return results


def evaluate(model: torch.nn.Module, network: ir.Network, data: ShapesDataset,
             count: int) -> tuple[dict[str, float], float, list[Any], tuple[Any, ...]]:
    """COCO metrics and VOC mAP@0.5 on ``count`` images of ``data``."""
    images, boxes, classes = data.batch(range(count))
    detections = predict(model, network, images)
    ids = list(range(count))
    dets = detections_to_coco(detections, ids)
    gts = {"images": [{"id": i} for i in ids],
           "annotations": [{**g, "id": k + 1} for k, g in enumerate(to_coco(boxes, classes))],
           "categories": [{"id": c} for c in range(len(CLASSES))]}
    voc = voc_map(dets, gts)["map"]
    return coco_map(dets, gts), voc, detections, (images, boxes, classes)


def draw(images: np.ndarray, detections: list[Any], path: Path, columns: int = 4,
         threshold: float = 0.4, scale: int = 2) -> None:
    """A grid of images with predicted boxes (class colour, name and score) as a PNG."""
    size = images.shape[-1] * scale
    rows = math.ceil(len(images) / columns)
    sheet = Image.new("RGB", (columns * size, rows * size))
    for index, (image, found) in enumerate(zip(images, detections, strict=True)):
        tile = Image.fromarray((image.transpose(1, 2, 0) * 255).astype(np.uint8))
        tile = tile.resize((size, size), Image.Resampling.NEAREST)
        pen = ImageDraw.Draw(tile)
        for box, score, cls in zip(*found, strict=True):
            if score < threshold:
                continue
            colour = COLOURS[int(cls) % len(COLOURS)]
            pen.rectangle([float(v) * scale for v in box], outline=colour, width=2)
            label = f"{CLASSES[int(cls)]} {score:.2f}"
            x, y = float(box[0]) * scale, max(float(box[1]) * scale - 11, 0)
            pen.rectangle([x, y, x + 6 * len(label) + 2, y + 10], fill=(0, 0, 0))
            pen.text((x + 1, y - 1), label, fill=colour)
        sheet.paste(tile, ((index % columns) * size, (index // columns) * size))
    # A 256-colour palette keeps the noisy images well under 200 KB.
    sheet.quantize(colors=256, dither=Image.Dither.NONE).save(path, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--minutes", type=float, default=8.0,
                        help="training time limit; the learning-rate schedule fits into it")
    parser.add_argument("--eval-images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "yolo_shapes.png")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    train_data = ShapesDataset(args.size, seed=args.seed, length=args.steps * args.batch)
    test_data = ShapesDataset(args.size, seed=args.seed + 10_000, length=args.eval_images)
    network = build_network(args.size, args.width, data=train_data)
    model = cnndsl.to_torch(network, seed=args.seed)
    anchors = [h.anchors for h in heads(network)]
    print(f"{network.name}: {network.total_params:,} parameters at {args.size}x{args.size}, "
          f"anchors {anchors}")
    losses = train(model, network, train_data, steps=args.steps, batch=args.batch, lr=args.lr,
                   time_limit=args.minutes * 60)
    trained = time.perf_counter() - start
    metrics, voc, detections, (images, _, _) = evaluate(model, network, test_data,
                                                        args.eval_images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    draw(images[:8], detections[:8], args.out)
    total = time.perf_counter() - start
    print(f"trained {len(losses)} steps x {args.batch} images in {trained / 60:.1f} min "
          f"(final loss {np.mean(losses[-20:]):.3f}); total {total / 60:.1f} min")
    print(f"held-out {args.eval_images} images: mAP@0.5 {metrics['map50']:.3f} (COCO 101-point), "
          f"VOC mAP@0.5 {voc:.3f}, mAP@[.5:.95] {metrics['map']:.3f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
