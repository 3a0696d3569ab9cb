"""torchvision state dicts -> ``cnndsl compile --to onnx --weights`` -> onnxruntime, for every
spec with a torchvision reference: the outputs must equal torchvision's (relative <= 1e-5), and
the compile must not import torch.

    python benchmarks/torchvision_weights.py            # makes its venv on the first run
    python benchmarks/torchvision_weights.py --venv DIR --specs resnet18 alexnet

The script runs itself inside a separate venv (default ``~/.cache/cnndsl/bench-torchvision``)
with ``torch==2.14.1 torchvision==0.29.1 onnxruntime safetensors`` from pip, since torchvision
does not import beside the project's torch. No weights are downloaded: each model is
torchvision's random initialisation (``weights=None``) with its batch-norm statistics
randomised too, saved as a ``.safetensors`` file by the ``safetensors`` package, as a user
would (that format records no tensor order). The compile runs in a subprocess in which
``import torch`` fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["torch==2.14.1", "torchvision==0.29.1", "onnxruntime", "safetensors", "numpy",
            "lark", "pydantic"]
DEFAULT_VENV = Path.home() / ".cache" / "cnndsl" / "bench-torchvision"

# spec -> (torchvision constructor, its keyword arguments, cnndsl compile flags)
MODELS: dict[str, tuple[str, dict[str, object], list[str]]] = {
    "alexnet": ("alexnet", {}, []),
    "vgg16": ("vgg16", {}, []),
    "googlenet": ("googlenet", {"aux_logits": False, "init_weights": True}, []),
    "resnet18": ("resnet18", {}, []),
    "resnet34": ("resnet34", {}, []),
    "resnet50": ("resnet50", {}, []),
    "resnet101": ("resnet101", {}, []),
    "resnet152": ("resnet152", {}, []),
}

NO_TORCH = ("import sys; sys.modules['torch'] = None\n"
            "from cnndsl.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "assert not [m for m, v in sys.modules.items() if m.startswith('torch') and v]\n"
            "sys.exit(code)\n")


def ensure_venv(venv: Path) -> Path:
    """The venv's python, made and filled on the first run."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PACKAGES], check=True)
    return python


def in_venv() -> bool:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        return False
    return True


def randomized(model: object) -> object:
    """Random batch-norm statistics as well, so that a misplaced one shows."""
    import torch

    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():  # type: ignore[attr-defined]
            if name.endswith("running_mean"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif name.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return model.eval()  # type: ignore[attr-defined]


def run_one(spec: str, work: Path) -> dict[str, object]:
    """Save, compile without torch, run and compare one model."""
    import numpy as np
    import onnxruntime as ort
    import torch
    import torchvision
    from safetensors.torch import save_file

    import cnndsl
    from cnndsl.weights import match_weights, network_targets, read_checkpoint

    constructor, kwargs, flags = MODELS[spec]
    torch.manual_seed(0)
    model = randomized(getattr(torchvision.models, constructor)(weights=None, **kwargs))
    state = model.state_dict()  # type: ignore[attr-defined]
    path = work / f"{spec}.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))

    network = cnndsl.load(ROOT / "specs" / f"{spec}.cnn")
    by_name = match_weights(network_targets(network), read_checkpoint(path).tensors, by="name")
    onnx_file = work / f"{spec}.onnx"
    command = [sys.executable, "-c", NO_TORCH, "compile", str(ROOT / "specs" / f"{spec}.cnn"),
               "--to", "onnx", "--weights", str(path), "--strict", "-o", str(onnx_file), *flags]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=work,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        return {"spec": spec, "error": result.stderr.strip() or result.stdout.strip()}
    how = result.stdout.splitlines()[0].rsplit("(", 1)[-1].rstrip(")")

    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x).numpy()  # type: ignore[operator]
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    error = float(np.abs(got - expected).max() / np.abs(expected).max())
    for file in (path, onnx_file):
        file.unlink()
    return {"spec": spec, "params": sum(v.numel() for k, v in state.items()
                                        if not k.endswith(("running_mean", "running_var",
                                                           "num_batches_tracked"))),
            "names": f"{by_name.report.matched}/{by_name.report.total}", "how": how,
            "relative": error, "compile_s": seconds, "ok": error <= 1e-5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--specs", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/cnndsl-torchvision-weights"))
    args = parser.parse_args()
    if not in_venv():
        python = ensure_venv(args.venv)
        os.execv(str(python), [str(python), __file__, "--venv", str(args.venv), "--work",
                               str(args.work), "--specs", *args.specs])
    import torch
    import torchvision

    sys.path.insert(0, str(ROOT))
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}; "
          "compile in a process without torch")
    print(f"{'spec':<10} {'params':>12} {'by name':>9} {'matched':<26} {'compile':>8} "
          f"{'max rel. diff':>14}")
    failed = False
    for spec in args.specs:
        row = run_one(spec, args.work)
        if "error" in row:
            failed = True
            print(f"{spec:<10} FAILED: {row['error']}")
            continue
        failed |= not row["ok"]
        print(f"{spec:<10} {row['params']:>12,} {row['names']:>9} {row['how']:<26} "
              f"{row['compile_s']:>7.2f}s {row['relative']:>14.2e}"
              f"{'' if row['ok'] else '  > 1e-5'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
