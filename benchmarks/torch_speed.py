"""Forward+backward time of ResNet-50: the live cnndsl module, the generated source, and
torchvision's resnet50 when torchvision is importable, measured in the same run.

    python benchmarks/torch_speed.py                          # CPU: batch 4 at 128 x 128
    python benchmarks/torch_speed.py --device cuda --batch 64 --size 224 --amp --channels-last

The models are timed in turns (A, B, C, A, B, C, ...) so that a busy machine slows all of them
alike; each figure is the median over the turns. Ratios near 1.00 mean no overhead.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import cnndsl
from cnndsl.backends.torch.emit import emit

SPEC = Path(__file__).resolve().parents[1] / "specs" / "resnet50.cnn"


def generated_model(source: str) -> nn.Module:
    """The network class of generated source, built."""
    namespace: dict = {}
    exec(compile(source, "<generated resnet50>", "exec"), namespace)
    return namespace[namespace["__all__"][0]]()  # type: ignore[no-any-return]


def torchvision_model() -> nn.Module | None:
    try:
        from torchvision.models import resnet50
    except ImportError:
        return None
    return resnet50()  # type: ignore[no-any-return]


def same_outputs(ours: nn.Module, reference: nn.Module) -> float:
    """The largest absolute difference of the two models' outputs in eval mode."""
    ours.eval()
    reference.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return float((ours(x) - reference(x)).abs().max())


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: bool,
              device: torch.device) -> Callable[[], None]:
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--size", type=int)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    batch = args.batch or (64 if device.type == "cuda" else 4)
    size = args.size or (224 if device.type == "cuda" else 128)
    memory = torch.channels_last if args.channels_last else torch.contiguous_format

    network = cnndsl.load(SPEC)
    live = cnndsl.to_torch(network, seed=0)
    generated = generated_model(emit(network))
    generated.load_state_dict(live.state_dict())
    models: dict[str, nn.Module] = {"live": live, "emitted": generated}
    reference = torchvision_model()
    if reference is None:
        print("torchvision is not importable: its ResNet-50 is skipped")
    else:
        cnndsl.load_weights(reference, live.state_dict(), by="order")
        models["torchvision"] = reference
        print(f"outputs, live vs torchvision with the same weights: "
              f"max |difference| {same_outputs(live, reference):.3g}")

    torch.manual_seed(0)
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=memory)
    y = torch.randint(0, 1000, (batch,), device=device)
    steps = {}
    for name, model in models.items():
        model.to(device=device, memory_format=memory).train()
        steps[name] = make_step(model, x, y, args.amp, device)
    for _ in range(args.warmup):
        for run in steps.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, run in steps.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    threads = torch.get_num_threads()
    print(f"ResNet-50 forward+backward, batch {batch}, {size}x{size}, {device}"
          f"{', AMP' if args.amp else ''}{', channels_last' if args.channels_last else ''}"
          f" ({threads} threads, median of {args.repeats})")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, seconds in medians.items():
        print(f"  {name:<12} {seconds * 1000:9.1f} ms/step  {batch / seconds:8.1f} images/s")
    print(f"  live / emitted       {medians['live'] / medians['emitted']:.3f}")
    if "torchvision" in medians:
        print(f"  live / torchvision   {medians['live'] / medians['torchvision']:.3f}")
        print(f"  emitted / torchvision {medians['emitted'] / medians['torchvision']:.3f}")


if __name__ == "__main__":
    main()
