"""Train LeNet-5 (specs/lenet5.cnn) on scikit-learn's 8x8 digits, upsampled to 32x32.

    python examples/train_digits.py                       # CPU, fp32
    python examples/train_digits.py --device cuda --amp --channels-last --compile

Prints the test accuracy and the wall time. The split is a fixed, stratified 80/20 of the 1,797
images; the pixels are scaled to [0, 1] and normalised with the training set's mean and std.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

import cnndsl

SPEC = Path(__file__).resolve().parents[1] / "specs" / "lenet5.cnn"


def digits(device: torch.device, seed: int) -> tuple[torch.Tensor, ...]:
    """Train and test images (N x 1 x 32 x 32) and labels, on ``device``."""
    data = load_digits()
    images = data.images.astype(np.float32) / 16.0
    train_x, test_x, train_y, test_y = train_test_split(
        images, data.target, test_size=0.2, random_state=seed, stratify=data.target
    )

    def prepare(array: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(array).unsqueeze(1)
        return F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)

    train, test = prepare(train_x), prepare(test_x)
    mean, std = train.mean(), train.std()
    return ((train - mean) / std).to(device), torch.from_numpy(train_y).to(device), \
        ((test - mean) / std).to(device), torch.from_numpy(test_y).to(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(SPEC))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision (fp16 on CUDA with a grad scaler, bf16 on CPU)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    start = time.perf_counter()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    train_x, train_y, test_x, test_y = digits(device, args.seed)
    model = cnndsl.to_torch(args.spec, seed=args.seed, device=device)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    train_x, test_x = (t.contiguous(memory_format=memory_format) for t in (train_x, test_x))
    step_model = torch.compile(model) if args.compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=1e-4,
                                nesterov=True)
    steps = args.epochs * ((len(train_x) + args.batch_size - 1) // args.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=steps)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp and amp_dtype == torch.float16)

    progress = tqdm(total=steps, unit="step", dynamic_ncols=True)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_x), device=device)
        for first in range(0, len(order), args.batch_size):
            batch = order[first:first + args.batch_size]
            with torch.autocast(device.type, dtype=amp_dtype, enabled=args.amp):
                loss = F.cross_entropy(step_model(train_x[batch]), train_y[batch])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            progress.update()
            progress.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}")
    progress.close()

    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=args.amp):
        predicted = step_model(test_x).argmax(1)
    accuracy = (predicted == test_y).float().mean().item()
    elapsed = time.perf_counter() - start
    print(f"test accuracy {accuracy:.2%} on {len(test_y)} images; wall time {elapsed:.1f} s "
          f"({args.device}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
