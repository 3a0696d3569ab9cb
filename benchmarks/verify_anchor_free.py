"""Verify cnndsl's anchor-free decoding and loss against Ultralytics (a separate venv).

Ultralytics is never a test dependency; this script makes its own venv, installs
``torch==2.14.1 torchvision==0.29.1 ultralytics`` there, and re-runs itself inside it::

    python benchmarks/verify_anchor_free.py            # creates /tmp/cnndsl-ultralytics-venv
    python benchmarks/verify_anchor_free.py --venv DIR

For seeded random head maps of three scales (strides 8, 16, 32) and random ground truths, it
compares with Ultralytics' own code:

* decoding: ``cnndsl.detection.decode_anchor_free`` against ``dist2bbox(DFL(boxes), anchors)``
  times the strides, as the ``Detect`` head's inference path computes it;
* the loss: ``cnndsl.detection.anchor_free_loss`` (box, cls and DFL parts and the total)
  against ``ultralytics.utils.loss.v8DetectionLoss`` of a ``yolov8n.yaml`` model.

Ultralytics 8.4 widens truths smaller than the second stride when choosing candidate anchors;
cnndsl's ``min_side`` reproduces that and is passed here. It prints the largest relative
difference of each and exits 1 if any exceeds 1e-5.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5


def _ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.14.1", "torchvision==0.29.1"], check=True)
        subprocess.run([*pip, "ultralytics", "lark>=1.1", "pydantic>=2.6", "numpy"], check=True)
    return python


def _relative(a: object, b: object) -> float:
    import numpy as np

    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(x - y)) / max(float(np.max(np.abs(y))), 1e-12))


def _compare(seeds: int) -> int:
    import numpy as np
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.loss import v8DetectionLoss
    from ultralytics.utils.tal import dist2bbox, make_anchors

    from cnndsl.detection import anchor_free_loss, decode_anchor_free

    classes, reg_max, size = 4, 16, 128
    strides = [8, 16, 32]
    model = DetectionModel("yolov8n.yaml", nc=classes, verbose=False)
    model.args = get_cfg()
    criterion = v8DetectionLoss(model)
    detect = model.model[-1]
    worst = {"decode": 0.0, "box": 0.0, "cls": 0.0, "dfl": 0.0, "total": 0.0}
    for seed in range(seeds):
        gen = torch.Generator().manual_seed(seed)
        maps = [torch.randn(2, 4 * reg_max + classes, size // s, size // s, generator=gen)
                for s in strides]
        # Decoding, as Detect's inference path does it.
        flat = torch.cat([m.view(2, 4 * reg_max + classes, -1) for m in maps], 2)
        boxes, scores = flat[:, : 4 * reg_max], flat[:, 4 * reg_max:]
        anchors, stride_of = (t.transpose(0, 1) for t in make_anchors(maps, detect.stride, 0.5))
        with torch.no_grad():
            reference = dist2bbox(detect.dfl(boxes), anchors.unsqueeze(0), xywh=False, dim=1)
        reference = (reference * stride_of).permute(0, 2, 1).numpy()
        ours = decode_anchor_free([m.numpy() for m in maps], strides, classes, reg_max).boxes
        worst["decode"] = max(worst["decode"], _relative(ours, reference))

        # The loss: 1 to 5 truths per image, some of them smaller than a stride.
        rng = np.random.default_rng(seed)
        gt_boxes, gt_classes, rows = [], [], []
        for image in range(2):
            count = int(rng.integers(1, 6))
            centre = rng.uniform(10, size - 10, (count, 2))
            wh = rng.uniform(4, 60, (count, 2))
            xyxy = np.clip(np.concatenate([centre - wh / 2, centre + wh / 2], 1), 0, size)
            labels = rng.integers(0, classes, count)
            gt_boxes.append(xyxy)
            gt_classes.append(labels)
            for box, label in zip(xyxy, labels, strict=True):
                cx, cy = (box[:2] + box[2:]) / 2 / size
                w, h = (box[2:] - box[:2]) / size
                rows.append((image, label, cx, cy, w, h))
        table = torch.tensor(rows, dtype=torch.float32)
        batch = {"batch_idx": table[:, 0], "cls": table[:, 1:2], "bboxes": table[:, 2:]}
        preds = {"boxes": boxes, "scores": scores, "feats": maps}
        total, parts = criterion(preds, batch)
        total = total.sum()  # Ultralytics returns the three weighted parts times the batch
        box_ref, cls_ref, dfl_ref = (parts[name] for name in criterion.loss_names)
        mine = anchor_free_loss(maps, gt_boxes, gt_classes, strides, classes, reg_max,
                                min_side=float(strides[1]))
        for name, value, expected in (("box", mine.box, box_ref),
                                      ("cls", mine.classification, cls_ref),
                                      ("dfl", mine.dfl, dfl_ref), ("total", mine.total, total)):
            worst[name] = max(worst[name], _relative(value.detach(), expected.detach()))
    import ultralytics

    print(f"ultralytics {ultralytics.__version__}, torch {torch.__version__}, {seeds} seeds, "
          f"2 images of {size}x{size}, {classes} classes, reg_max {reg_max}")
    for name, value in worst.items():
        print(f"  {name:<7} largest relative difference {value:.2e}")
    return 0 if max(worst.values()) <= TOLERANCE else 1


def main() -> int:
    """Run the comparison inside the Ultralytics venv (creating it when needed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/cnndsl-ultralytics-venv"))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        return _compare(args.seeds)
    python = _ensure_venv(args.venv)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(python), __file__, "--inside", "--seeds", str(args.seeds)],
                          env=env, check=False)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
