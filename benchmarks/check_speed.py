"""Cold-process time of ``cnndsl check``: ResNet-50 and generated specs of 1,000 to 10,000 layers.

Each figure is a fresh ``python -m cnndsl.cli check -q FILE`` process (interpreter start, imports,
parse, elaborate, shapes, counts), best and median of several runs. Generated specs repeat a
conv -> bn -> relu unit inside residual blocks, so blocks, repeats and shape checks all take part.
Runs are interleaved (one run of every spec per round) so that a busy machine slows all of them
alike. Linearity: the marginal time per node between 3,000 and 10,000 layers over that between
1,000 and 3,000 layers (1.0 = linear; start-up cancels out of both slopes).

Cold start (issue 11): ``cnndsl check specs/resnet50.cnn`` at most 0.08 s more than the floor
``python -c "import lark, pydantic"`` (the two libraries the front end is built on), both
measured here in the same interleaved rounds. ``--baseline DIR`` times another source tree
(e.g. a ``git worktree`` of an older commit) in the same rounds, so that a change in checking
speed shows as a ratio measured side by side.

Targets (issue 3): ResNet-50 at most 0.4 s, 10,000 layers under 2 s.

    python benchmarks/check_speed.py [--runs 5] [--baseline ../old-checkout]
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


def generated_spec(layers: int) -> str:
    """A spec of about ``layers`` IR nodes: residual units of conv -> bn -> relu, written out."""
    lines = [
        "block unit(width) {",
        "  residual {",
        "    conv width 3x3 pad 1 -> bn -> relu",
        "    conv width 3x3 pad 1 -> bn",
        "  }",
        "  -> relu",
        "}",
        "network generated {",
        "  input image: 3 x 32 x 32",
        "  stem: conv 16 3x3 pad 1 -> bn -> relu",
    ]
    per_unit = 7  # conv, bn, relu, conv, bn, add, relu
    units = max(1, (layers - 4) // per_unit)
    # Written statement by statement (not one `x N`) so that parsing grows with the size too.
    for index in range(units):
        lines.append(f"  s{index}: unit(16)")
    lines += ["  head: gap -> flatten -> linear 10", "}"]
    return "\n".join(lines) + "\n"


def one_layer_spec() -> str:
    """The smallest spec: what start-up alone costs."""
    return "network tiny {\n  input image: 3 x 8 x 8\n  relu\n}\n"


FLOOR = "import lark, pydantic"


def time_once(path: Path | None, source: Path = ROOT) -> float:
    """Seconds of one fresh check process on ``source``'s cnndsl (``None``: the floor)."""
    command = ([sys.executable, "-c", FLOOR] if path is None
               else [sys.executable, "-m", "cnndsl.cli", "check", "-q", str(path)])
    environment = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=source, env=environment)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"check failed on {path}:\n{done.stdout}{done.stderr}")
    return elapsed


def node_count(path: Path) -> int:
    """How many IR nodes the spec has (checked in this process)."""
    from cnndsl import load

    return len(load(path).nodes)


def main() -> None:
    """Print the table of timings and the linearity ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another source tree to time alongside")
    args = parser.parse_args()
    rows: list[tuple[str, float, float, int]] = []
    baseline: dict[str, list[float]] = {}
    floor: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        tiny = base / "tiny.cnn"
        tiny.write_text(one_layer_spec())
        cases = [("one layer (start-up)", tiny), ("specs/resnet50.cnn", ROOT / "specs" /
                                                 "resnet50.cnn")]
        for size in (1_000, 3_000, 10_000):
            path = base / f"generated_{size}.cnn"
            path.write_text(generated_spec(size))
            cases.append((f"generated {size:,} layers", path))
        times: dict[str, list[float]] = {label: [] for label, _ in cases}
        baseline = {label: [] for label, _ in cases} if args.baseline else {}
        for _ in range(args.runs):
            floor.append(time_once(None))
            for label, path in cases:
                times[label].append(time_once(path))
                if args.baseline:
                    baseline[label].append(time_once(path, args.baseline.resolve()))
        for label, path in cases:
            runs = times[label]
            rows.append((label, min(runs), statistics.median(runs), node_count(path)))
    startup = rows[0][1]
    print(f"cold `cnndsl check -q`, {args.runs} runs each, {sys.version.split()[0]}")
    print(f"{'spec':<26} {'nodes':>7} {'best s':>8} {'median s':>9} {'us/node':>9}")
    for label, best, median, nodes in rows:
        per_node = (best - startup) / nodes * 1e6 if nodes > 10 else float("nan")
        print(f"{label:<26} {nodes:>7,} {best:>8.3f} {median:>9.3f} {per_node:>9.1f}")
    (_, t1, m1, n1), (_, t3, m3, n3), (_, t10, m10, n10) = rows[2:5]
    for name, a, b, c in (("best", t1, t3, t10), ("median", m1, m3, m10)):
        low, high = (b - a) / (n3 - n1), (c - b) / (n10 - n3)
        print(f"marginal time per node ({name}): {low * 1e6:.1f} us (1k-3k), "
              f"{high * 1e6:.1f} us (3k-10k); ratio {high / low:.2f} (1.0 = linear)")
    resnet, big = rows[1][1], rows[-1][1]
    print(f"targets: resnet50 {resnet:.3f} s (<= 0.4 s: {'ok' if resnet <= 0.4 else 'MISSED'}); "
          f"10,000 layers {big:.3f} s (< 2 s: {'ok' if big < 2 else 'MISSED'})")
    over = resnet - min(floor)
    print(f"cold start: floor `python -c \"{FLOOR}\"` best {min(floor):.3f} s (median "
          f"{statistics.median(floor):.3f}); resnet50 check is {over:+.3f} s over it "
          f"(<= 0.08 s: {'ok' if over <= 0.08 else 'MISSED'})")
    if baseline:
        print(f"against the baseline {args.baseline} (best s, this / baseline):")
        for label, best, _, _ in rows:
            theirs = min(baseline[label])
            print(f"  {label:<26} {best:>7.3f} {theirs:>7.3f}  ratio {best / theirs:.2f}")


if __name__ == "__main__":
    main()
