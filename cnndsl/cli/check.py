"""``cnndsl check``: diagnostics, the per-layer table, totals and expect lines of each spec."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from cnndsl import ir
from cnndsl.cli.common import add_spec_options, check_one, exit_code
from cnndsl.compiler import CheckResult
from cnndsl.diagnostics import render_all
from cnndsl.tables import format_table, kind_label


def layer_table(network: ir.Network) -> str:
    """The per-layer table that ``check`` prints: path, kind, output shape, parameters."""
    rows = [("path", "kind", "output", "params")]
    for node in network.nodes:
        rows.append((node.name, kind_label(node), ir.shape_str(node.shape), f"{node.params:,}"))
    return "\n".join(format_table(rows, (False, False, False, True)))


def _totals(network: ir.Network) -> str:
    outputs = ", ".join(f"{name}: {ir.shape_str(shape)}"
                        for name, shape in network.output_shapes().items())
    return (f"  params {network.total_params:,} (trainable {network.trainable_params:,}); "
            f"outputs {outputs}")


def result_json(result: CheckResult) -> dict[str, Any]:
    """The stable per-file JSON object of ``check --format json``."""
    network = result.network
    return {
        "file": result.file,
        "ok": result.ok,
        "network": network.name if network else None,
        "params": network.total_params if network else None,
        "trainable_params": network.trainable_params if network else None,
        "outputs": (
            {name: ir.shape_str(shape) for name, shape in network.output_shapes().items()}
            if network else {}
        ),
        "expects": [
            {"text": e.text, "actual": e.actual, "ok": e.ok, "line": e.span.line}
            for e in (network.expects if network else [])
        ],
        "diagnostics": [d.to_json() for d in result.diagnostics],
    }


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Check specs; print diagnostics, then a per-layer table and totals for each."""
    results = [check_one(path, args) for path in args.files]
    if args.format == "json":
        out.write(json.dumps([result_json(r) for r in results], indent=2) + "\n")
        return exit_code(results)
    for result in results:
        if result.diagnostics:
            out.write(render_all(result.diagnostics, result.sources) + "\n")
        network = result.network
        if network is None:
            continue
        status = "ok" if result.ok else "FAILED"
        out.write(f"{result.file}: network {network.name}: {status}\n")
        if not args.quiet:
            out.write(layer_table(network) + "\n")
        out.write(_totals(network) + "\n")
        for expect in network.expects:
            mark = "ok" if expect.ok else "FAILED"
            out.write(f"  expect {expect.text}: {mark} (actual {expect.actual})\n")
    return exit_code(results)


def add_parser(sub: Any) -> None:
    """Register ``check``."""
    p = sub.add_parser("check", help="check shapes, parameter counts and expect lines")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-layer table")
    add_spec_options(p)
    p.set_defaults(run=run)
