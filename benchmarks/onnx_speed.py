"""Cold-process ONNX export time: ``cnndsl compile --to onnx`` against ``torch.onnx.export``.

Each measurement is a fresh Python process (imports included), run in the same session and
interleaved, best of ``--repeats``. cnndsl is timed twice: as it normally runs, with the default
opset that it cached on disk the first time (per installation of onnx and onnxruntime), and with
an empty cache, as on the first compile after an install, when it asks onnxruntime. The torch
side imports torch, builds the same module with ``cnndsl.to_torch`` and exports it with the
TorchScript-based exporter (``dynamo=False``) and, where it works, the dynamo-based one
(``dynamo=True``, ``torch.onnx.export``'s default in torch 2.13). Then both ONNX files run in
onnxruntime on the same input and their inference times are compared (median of many runs).

    python benchmarks/onnx_speed.py [--spec specs/resnet50.cnn] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 10.0  # cnndsl at least this many times faster than torch.onnx.export

TORCH_EXPORT = """
import sys, torch, cnndsl
spec, target, dynamo = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
network = cnndsl.load(spec)
model = cnndsl.to_torch(network).eval()
shape = network.node(network.inputs[0]).shape
example = torch.zeros(2, *shape)  # batch 1 would be specialised by torch.export
kwargs = dict(input_names=list(network.inputs), output_names=list(network.outputs))
if dynamo:  # forward(*inputs): the dynamic shapes follow that varargs tuple
    kwargs["dynamic_shapes"] = {"inputs": ({0: torch.export.Dim("N", min=1, max=1024)},)}
else:
    kwargs["dynamic_axes"] = {name: {0: "N"} for name in [*network.inputs, *network.outputs]}
with torch.no_grad():
    torch.onnx.export(model, (example,), target, dynamo=dynamo, **kwargs)
"""


def _time(command: list[str], env: dict[str, str] | None = None) -> float | None:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False,
                          env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        print(f"  failed: {' '.join(command[:4])} ...\n  {done.stderr.strip()[-400:]}")
        return None
    return elapsed


def _inference(paths: dict[str, Path], runs: int) -> dict[str, float]:
    """Median batch-1 latency per model; runs are interleaved so that load noise is shared."""
    import numpy as np
    import onnxruntime as ort

    sessions = {label: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                for label, path in paths.items()}
    first = next(iter(sessions.values())).get_inputs()[0]
    dims = [d if isinstance(d, int) else 1 for d in first.shape]
    x = np.random.default_rng(0).standard_normal(dims, dtype=np.float32)
    times: dict[str, list[float]] = {label: [] for label in sessions}
    for index in range(runs + 3):
        for label, session in sessions.items():
            feed = {session.get_inputs()[0].name: x}
            start = time.perf_counter()
            session.run(None, feed)
            if index >= 3:  # warm-up runs
                times[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> None:
    """Run the comparison and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="specs/resnet50.cnn")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20, help="onnxruntime runs per model")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        compile_ = [python, "-m", "cnndsl.cli", "compile", args.spec, "--to", "onnx", "-o",
                    str(out / "cnndsl.onnx")]
        subprocess.run(compile_, capture_output=True, cwd=ROOT, check=True)  # fills the cache
        commands = {
            "cnndsl compile --to onnx": compile_,
            "  the same, empty opset cache": compile_,
            "torch.onnx.export (dynamo=False)": [python, "-c", TORCH_EXPORT, args.spec,
                                                 str(out / "torchscript.onnx"), "0"],
            "torch.onnx.export (dynamo=True)": [python, "-c", TORCH_EXPORT, args.spec,
                                                str(out / "dynamo.onnx"), "1"],
        }
        best: dict[str, float] = {}
        for _ in range(args.repeats):
            for label, command in commands.items():
                if label in best and best[label] == float("inf"):
                    continue
                env = None
                if "empty" in label:  # a fresh directory each time: nothing cached
                    env = {**os.environ, "CNNDSL_CACHE_DIR": tempfile.mkdtemp(dir=scratch)}
                elapsed = _time(command, env)
                best[label] = min(best.get(label, float("inf")),
                                  elapsed if elapsed is not None else float("inf"))
        print(f"cold-process export of {args.spec} (best of {args.repeats}):")
        ours = best["cnndsl compile --to onnx"]
        for label, seconds in best.items():
            if seconds == float("inf"):
                print(f"  {label:<34} failed")
                continue
            if not label.startswith("torch"):
                print(f"  {label:<34} {seconds:7.2f} s")
                continue
            verdict = "meets" if seconds / ours >= TARGET else "misses"
            print(f"  {label:<34} {seconds:7.2f} s   ({seconds / ours:.1f}x cnndsl: "
                  f"{verdict} the {TARGET:g}x target)")
        files = {"cnndsl": out / "cnndsl.onnx", "torch (dynamo=False)": out / "torchscript.onnx",
                 "torch (dynamo=True)": out / "dynamo.onnx"}
        print(f"onnxruntime inference, batch 1, median of {args.runs} interleaved runs:")
        latencies = _inference({k: v for k, v in files.items() if v.exists()}, args.runs)
        reference = latencies["cnndsl"]
        for label, seconds in latencies.items():
            print(f"  {label:<22} {seconds * 1000:8.2f} ms   "
                  f"({(seconds / reference - 1) * 100:+.1f}% vs cnndsl)")


if __name__ == "__main__":
    main()
