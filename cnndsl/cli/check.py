"""``cnndsl check``: every network of each file (directories and globs too), libraries, a tally."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from cnndsl import ir
from cnndsl.analysis import params as param_analysis
from cnndsl.cli.common import EXIT_OK, EXIT_SPEC, EXIT_USAGE, add_spec_options, spec_options
from cnndsl.diagnostics import Code
from cnndsl.reporting import render
from cnndsl.tables import format_table, kind_label
from cnndsl.workspace import PathError, Unit, check_units, expand_paths


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


def unit_json(unit: Unit) -> dict[str, Any]:
    """The stable JSON object of one network (or library, or unreadable file) of ``check``.

    The fields it shares with ``summary --json`` (network, input, params, trainable_params,
    buffers) have the same names and values there.
    """
    result = unit.result
    network = result.network
    data: dict[str, Any] = {
        "file": result.file,
        "kind": unit.kind,
        "ok": unit.ok,
        "network": network.name if network else None,
        "input": (
            {name: ir.shape_str(network.node(name).shape) for name in network.inputs}
            if network else {}
        ),
        "params": network.total_params if network else None,
        "trainable_params": network.trainable_params if network else None,
        "buffers": param_analysis.total_buffers(network) if network else None,
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
    if unit.kind == "library":
        data["blocks"] = unit.blocks
    return data


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def tally(units: list[Unit], files: int) -> str:
    """``12 files, 14 networks: 13 ok, 1 failed`` (libraries and unreadable files counted)."""
    networks = sum(u.kind == "network" for u in units)
    libraries = sum(u.kind == "library" for u in units)
    parts = [_plural(files, "file"), _plural(networks, "network")]
    if libraries:
        parts.append(_plural(libraries, "library", "libraries"))
    ok = sum(u.ok for u in units)
    return f"{', '.join(parts)}: {ok} ok, {len(units) - ok} failed"


def _exit_code(units: list[Unit]) -> int:
    for unit in units:
        if unit.kind == "file" and any(d.code is Code.IO and d.span.file == unit.result.file
                                       for d in unit.result.diagnostics):
            return EXIT_USAGE
    return EXIT_OK if all(u.ok for u in units) else EXIT_SPEC


def _write_text(unit: Unit, quiet: bool, out: TextIO) -> None:
    result = unit.result
    if result.diagnostics:
        out.write(render(result.diagnostics, "text", result.sources))
    if quiet:
        return
    status = "ok" if unit.ok else "FAILED"
    if unit.kind == "library":
        blocks = ", ".join(unit.blocks) or "none"
        out.write(f"{result.file}: library (blocks {blocks}): {status}\n")
        return
    network = result.network
    if network is None:
        return
    out.write(f"{result.file}: network {network.name}: {status}\n")
    out.write(layer_table(network) + "\n")
    out.write(_totals(network) + "\n")
    for expect in network.expects:
        mark = "ok" if expect.ok else "FAILED"
        out.write(f"  expect {expect.text}: {mark} (actual {expect.actual})\n")


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Check specs; print diagnostics, per-layer tables and totals, and a final tally."""
    try:
        paths = expand_paths(args.files)
    except PathError as error:
        sys.stderr.write(f"cnndsl check: {error}\n")
        return EXIT_USAGE
    options = spec_options(args)
    units = [unit for path in paths for unit in check_units(path, options, sys.stdin)]
    if args.format == "json":
        out.write(json.dumps([unit_json(u) for u in units], indent=2) + "\n")
    elif args.format in ("sarif", "github"):
        diagnostics = [d for u in units for d in u.result.diagnostics]
        out.write(render(diagnostics, args.format))
        if args.format == "github":
            out.write(tally(units, len(paths)) + "\n")
    else:
        for unit in units:
            _write_text(unit, args.quiet, out)
        out.write(tally(units, len(paths)) + "\n")
    return _exit_code(units)


def add_parser(sub: Any) -> None:
    """Register ``check``."""
    p = sub.add_parser("check", help="check shapes, parameter counts and expect lines")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="files, directories (their *.cnn, recursively) or globs; - for stdin")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only problems and the final tally")
    add_spec_options(p)
    p.set_defaults(run=run)
