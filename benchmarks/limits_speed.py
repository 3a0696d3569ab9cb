"""Cost of specs at the input limits: parse + check at the 8 MiB size limit, and compile --to torch.

Issue 17: an 8 MiB spec (the size limit) of one-layer lines ran for minutes and died at 3.8 GB;
``compile --to torch`` was quadratic in the layer count (30 s at 10,000 lines). Each case here is
a fresh ``python -m cnndsl ...`` process; the table shows its wall time, its CPU time (user +
system, what a busy machine does not inflate much) and its peak resident memory.

Parse cases, each 8 MiB or the most the token limit lets through:
  - 8 MiB of one-layer lines: refused by the token bound before the parser runs;
  - 8 MiB of comments: a run of comment lines is one token, so it is parsed (and is cheap);
  - one-layer lines just under the token limit: the most parse work a spec can ask for;
  - labelled conv lines just under the token limit.
Compile cases: 1,000, 4,000 and 10,000 layers written one a line, ``compile --to torch``; the
per-layer CPU time of 10,000 over that of 1,000 shows linearity (about 1.0 is linear).

Targets: every parse case within 10 s and 1 GB; compile of 10,000 layers under 3 s.

    python benchmarks/limits_speed.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnndsl.syntax.parser import MAX_SOURCE_BYTES, MAX_TOKENS  # noqa: E402

HEAD = "network big {\n  input image: 4 x 8 x 8\n"


def one_layer_lines(limit_bytes: int) -> str:
    """One ``relu`` a line, as many as fit in the byte limit."""
    line = "  relu\n"
    return HEAD + line * ((limit_bytes - len(HEAD) - 2) // len(line)) + "}\n"


def comments(limit_bytes: int) -> str:
    """A one-layer network under comment lines filling the byte limit."""
    body = HEAD + "  relu\n}\n"
    line = "# a comment line of prose, as long as a long comment would be in a real spec\n"
    return line * ((limit_bytes - len(body)) // len(line)) + body


def under_token_limit(line: str, tokens_per_line: int) -> str:
    """Lines of ``tokens_per_line`` tokens each, as many as the token limit lets through."""
    count = (MAX_TOKENS - 40) // tokens_per_line
    return HEAD + "".join(line.format(i=i) for i in range(count)) + "}\n"


def layers(count: int) -> str:
    """``count`` layers, conv and relu in turn, one a line."""
    lines = [f"  l{i}: relu\n" if i % 2 else f"  l{i}: conv 4 3x3 pad 1\n" for i in range(count)]
    return HEAD + "".join(lines) + "}\n"


def run(arguments: list[str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak MB and the first output line of one fresh process."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "cnndsl", *arguments], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    output = process.stdout.read() if process.stdout else ""
    first = (output.splitlines() or [""])[0]
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, f"exit {os.waitstatus_to_exitcode(status)}: {first}"


def main() -> None:
    """Print both tables and the targets."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        parse_cases = {
            "8 MiB of one-layer lines": one_layer_lines(MAX_SOURCE_BYTES),
            "8 MiB of comment lines": comments(MAX_SOURCE_BYTES),
            "one-layer lines at the token limit": under_token_limit("  relu\n", 2),
            "labelled conv lines at the token limit":
                under_token_limit("  l{i}: conv 4 3x3 pad 1\n", 8),
        }
        print(f"check -q at the limits ({MAX_SOURCE_BYTES // 2**20} MiB, {MAX_TOKENS:,} tokens)")
        print(f"{'case':<40} {'MiB':>5} {'wall s':>7} {'cpu s':>6} {'peak MB':>8}  result")
        worst_cpu = worst_wall = worst_mb = 0.0
        for label, text in parse_cases.items():
            path = base / "spec.cnn"
            path.write_text(text)
            wall, cpu, peak, result = run(["check", "-q", str(path)])
            worst_cpu, worst_wall = max(worst_cpu, cpu), max(worst_wall, wall)
            worst_mb = max(worst_mb, peak)
            print(f"{label:<40} {len(text) / 2**20:>5.1f} {wall:>7.2f} {cpu:>6.2f} "
                  f"{peak:>8.0f}  {result[:70]}")
        print()
        print(f"{'compile --to torch':<40} {'layers':>6} {'wall s':>7} {'cpu s':>6} {'peak MB':>8}")
        per_layer: dict[int, float] = {}
        for count in (1_000, 4_000, 10_000):
            path = base / f"layers{count}.cnn"
            path.write_text(layers(count))
            wall, cpu, peak, result = run(["compile", str(path), "--to", "torch", "-o",
                                           str(base / "model.py")])
            per_layer[count] = cpu
            print(f"{'':<40} {count:>6,} {wall:>7.2f} {cpu:>6.2f} {peak:>8.0f}  {result[:40]}")
        big = per_layer[10_000]
        ratio = (big - per_layer[1_000]) / 9_000 / max(per_layer[1_000] / 1_000, 1e-9)
    print()
    print(f"targets: parse + check at the limits: worst {worst_cpu:.2f} s CPU, {worst_wall:.2f} s "
          f"wall, {worst_mb:.0f} MB (<= 10 s, 1 GB: "
          f"{'ok' if worst_cpu <= 10 and worst_mb <= 1024 else 'MISSED'}); "
          f"compile of 10,000 layers {big:.2f} s CPU (< 3 s: {'ok' if big < 3 else 'MISSED'})")
    print(f"marginal CPU per layer 1k-10k over the average at 1k: {ratio:.2f} "
          f"(below 1.0: start-up dominates at 1k; quadratic would be about 5)")


if __name__ == "__main__":
    main()
