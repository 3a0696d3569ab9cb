"""How close are memory estimates to the measured peak? cnndsl's replay beside torchinfo.

For each network (224 x 224, batch 8, Adam) this builds the PyTorch module with
``cnndsl.to_torch``, measures inference (eval, no_grad) and one steady-state training step with
``cnndsl.analysis.measure`` (MemTracker's peak on the CPU), and prints estimate / measured for
cnndsl's estimate and for torchinfo's "estimated total size" of the same module (torchinfo has
one figure for both). When CUDA is available, it also measures on the GPU and compares the
``device="cuda"`` estimate with ``torch.cuda.max_memory_allocated``.

Run: ``python benchmarks/memory_accuracy.py [--batch 8] [--size 224] [--only resnet18,vgg16]``
(several minutes on a CPU).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from cnndsl import check
from cnndsl.analysis import memory
from cnndsl.analysis.measure import measure
from cnndsl.backends.torch.runtime import to_torch

SPECS = Path(__file__).resolve().parent.parent / "specs"
NETWORKS = {
    "ResNet-18": "resnet18.cnn",
    "ResNet-50": "resnet50.cnn",
    "VGG-16": "vgg16.cnn",
    "GoogLeNet": "googlenet.cnn",
    "AlexNet": "alexnet.cnn",
    "Xception": "xception.cnn",
    "SE-ResNet-50": "seresnet50.cnn",
}


def torchinfo_estimate(module: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """torchinfo's "Estimated Total Size": input + forward/backward outputs + parameters."""
    import torchinfo

    stats = torchinfo.summary(module, input_size=shape, verbose=0, device="cpu")
    return int(stats.total_input + stats.total_output_bytes + stats.total_param_bytes)


def main() -> None:
    """Print the ratio table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--only", help="comma-separated file stems, e.g. resnet18,vgg16")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    chosen = {k: v for k, v in NETWORKS.items()
              if not args.only or v.removesuffix(".cnn") in args.only.split(",")}
    header = (f"{'network':<13} {'measured inf':>13} {'measured train':>15} "
              f"{'cnndsl inf':>10} {'cnndsl train':>12} {'torchinfo inf':>13} "
              f"{'torchinfo train':>15}")
    if cuda:
        header += f" {'cuda inf':>9} {'cuda train':>10}"
    print(f"batch {args.batch}, {args.size}x{args.size}, {args.optimizer}, fp32; "
          "ratios are estimate / measured (MemTracker peak on the CPU"
          + ("; cuda columns: torch.cuda.max_memory_allocated" if cuda else "") + ")")
    print(header)
    for label, file in chosen.items():
        start = time.perf_counter()
        network = check(SPECS / file, input=f"3x{args.size}x{args.size}").network
        assert network is not None, file
        shape = (args.batch, 3, args.size, args.size)
        x = torch.randn(*shape)
        measured, ours = {}, {}
        for kind in ("inference", "training"):
            measured[kind] = measure(to_torch(network), x, kind=kind,
                                     optimizer=args.optimizer).peak
            ours[kind] = memory.peak_bytes(network, kind, args.batch, "fp32", args.optimizer)
        theirs = torchinfo_estimate(to_torch(network), shape)
        row = (f"{label:<13} {memory.format_bytes(measured['inference']):>13} "
               f"{memory.format_bytes(measured['training']):>15} "
               f"{ours['inference'] / measured['inference']:>10.3f} "
               f"{ours['training'] / measured['training']:>12.3f} "
               f"{theirs / measured['inference']:>13.2f} "
               f"{theirs / measured['training']:>15.2f}")
        if cuda:
            ratios = []
            for kind in ("inference", "training"):
                run = measure(to_torch(network), x, kind=kind, optimizer=args.optimizer,
                              device="cuda")
                estimate = memory.peak_bytes(network, kind, args.batch, "fp32", args.optimizer,
                                             device="cuda")
                ratios.append(estimate / (run.cuda_max_allocated or run.peak))
            row += f" {ratios[0]:>9.3f} {ratios[1]:>10.3f}"
        print(row + f"   ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
