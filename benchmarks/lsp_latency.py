"""Warm re-check latency of ``cnndsl lsp``: ResNet-50 and a generated 10,000-layer spec.

A real client (pygls) starts the server as a subprocess, opens the spec, then edits one
channel count back and forth: each edit is a ``didChange`` whose diagnostics the client waits
for. Two figures per edit: the time the server spent checking (its own clock, read back with the
``cnndsl.lastCheckMilliseconds`` command, wall clock and the process's CPU time: on a shared
machine the two differ by the load) and the client's round trip (edit sent to diagnostics
received, including JSON-RPC and the pipe). The alternative measured in the same run is the
uncached check of the same text in this process (``check_text``: parse, imports, elaborate),
what each keystroke would cost without the server's caches and incremental reparse.

Targets (issue 16): median in-server re-check <= 20 ms for ResNet-50, <= 300 ms for 10,000 layers.

    python benchmarks/lsp_latency.py [--edits 21]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from check_speed import generated_spec  # noqa: E402

from cnndsl.compiler import check_text  # noqa: E402

SERVER = [sys.executable, "-m", "cnndsl", "lsp"]
TARGETS = {"resnet50": 20.0, "10,000 layers": 300.0}


def _position(text: str, offset: int) -> types.Position:
    before = text[:offset]
    return types.Position(line=before.count("\n"), character=len(before.rsplit("\n", 1)[-1]))


class Session:
    """One server process and the diagnostics it publishes."""

    def __init__(self) -> None:
        self.client = LanguageClient("lsp-latency", "1")
        self.published: asyncio.Queue[types.PublishDiagnosticsParams] = asyncio.Queue()

        @self.client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def diagnostics(params: types.PublishDiagnosticsParams) -> None:
            self.published.put_nowait(params)

    async def start(self) -> None:
        """Start and initialise the server."""
        await self.client.start_io(*SERVER, env={"PYTHONPATH": str(ROOT)})
        await self.client.initialize_async(types.InitializeParams(
            capabilities=types.ClientCapabilities(), root_uri=ROOT.as_uri()))
        self.client.initialized(types.InitializedParams())

    async def stop(self) -> None:
        """Shut the server down."""
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()

    async def server_ms(self) -> tuple[float, float]:
        """The server's own wall and CPU time for its last check."""
        result = await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="cnndsl.lastCheckMilliseconds"))
        return float(result["wall_ms"]), float(result["cpu_ms"])

    async def wait(self, uri: str) -> types.PublishDiagnosticsParams:
        """The next diagnostics for a document."""
        while True:
            params = await self.published.get()
            if params.uri == uri:
                return params


async def measure(name: str, path: Path, old: str, new: str, edits: int) -> dict[str, float]:
    """Open a spec, then alternate one edit ``old`` <-> ``new``; median times in ms."""
    text = path.read_text()
    offset = text.index(old)
    session = Session()
    await session.start()
    uri = path.resolve().as_uri()
    start = time.perf_counter()
    session.client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="cnn", version=1, text=text)))
    await session.wait(uri)
    cold = (time.perf_counter() - start) * 1000
    inside, cpu, round_trips, counts = [], [], [], []
    current = old
    for version in range(2, edits + 2):
        replacement = new if current == old else old
        end = _position(text, offset + len(current))
        change = types.TextDocumentContentChangePartial(
            range=types.Range(start=_position(text, offset), end=end), text=replacement)
        text = text[:offset] + replacement + text[offset + len(current):]
        current = replacement
        sent = time.perf_counter()
        session.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[change]))
        published = await session.wait(uri)
        round_trips.append((time.perf_counter() - sent) * 1000)
        wall_ms, cpu_ms = await session.server_ms()
        inside.append(wall_ms)
        cpu.append(cpu_ms)
        counts.append(len(published.diagnostics))
    await session.stop()
    uncached = []
    for _ in range(max(3, edits // 4)):
        begin = time.perf_counter()
        check_text(text, str(path.resolve()))
        uncached.append((time.perf_counter() - begin) * 1000)
    return {"cold": cold, "server": statistics.median(inside), "server_max": max(inside),
            "cpu": statistics.median(cpu),
            "round_trip": statistics.median(round_trips), "uncached": statistics.median(uncached),
            "diagnostics": max(counts)}


def main() -> None:
    """Print the latency table and whether each target is met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=21)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        big = Path(folder) / "generated_10000.cnn"
        spec = generated_spec(10_000)
        big.write_text(spec)
        middle = f"s{(10_000 - 4) // 7 // 2}: unit(16)"
        cases = [
            ("resnet50", ROOT / "specs" / "resnet50.cnn", "conv 64 7x7", "conv 65 7x7"),
            ("10,000 layers", big, middle, middle.replace("16", "17")),
        ]
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"warm re-check latency of cnndsl lsp, median of {args.edits} edits (ms); "
              f"{os.cpu_count()} cores, load average {load}")
        print(f"{'spec':<15}{'in server':>10}{'max':>8}{'cpu':>8}{'round trip':>12}"
              f"{'uncached':>10}{'ratio':>7}{'first open':>12}  target (in server)")
        for name, path, old, new in cases:
            result = asyncio.run(measure(name, path, old, new, args.edits))
            target = TARGETS[name]
            verdict = "met" if result["server"] <= target else "MISSED"
            ratio = result["uncached"] / result["server"]
            print(f"{name:<15}{result['server']:>10.1f}{result['server_max']:>8.1f}"
                  f"{result['cpu']:>8.1f}{result['round_trip']:>12.1f}{result['uncached']:>10.1f}{ratio:>6.1f}x"
                  f"{result['cold']:>12.1f}  <= {target:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
