"""``cnndsl check``: every network of each file (directories and globs too), libraries, a tally."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from cnndsl import ir
from cnndsl.analysis import params as param_analysis
from cnndsl.analysis import receptive
from cnndsl.cli.common import EXIT_OK, EXIT_SPEC, EXIT_USAGE, add_spec_options, spec_options
from cnndsl.diagnostics import Code
from cnndsl.reporting import render
from cnndsl.tables import format_table, kind_label
from cnndsl.workspace import PathError, Unit, check_units, expand_paths


def layer_table(network: ir.Network, receptive_field: bool = False) -> str:
    """The per-layer table that ``check`` prints: path, kind, output shape, parameters.

    With ``receptive_field``, three more columns: the field's size, jump and offset.
    """
    header = ("path", "kind", "output", "params")
    rows: list[tuple[str, ...]] = [header + (("rf", "jump", "offset") if receptive_field else ())]
    for node in network.nodes:
        row: tuple[str, ...] = (node.name, kind_label(node), ir.shape_str(node.shape),
                                f"{node.params:,}")
        if receptive_field:
            field = node.receptive_field
            row += (receptive.size_text(field),
                    receptive.pair_text(field.jump if field else None),
                    receptive.pair_text(field.offset if field else None))
        rows.append(row)
    right = (False, False, False, True) + ((True, True, True) if receptive_field else ())
    lines = format_table(rows, right)
    if receptive_field:
        lines.extend(_branch_notes(network))
    return "\n".join(lines)


def _branch_notes(network: ir.Network) -> list[str]:
    """Merges whose inputs see different windows: each input's field size."""
    notes = []
    for node in network.nodes:
        field = node.receptive_field
        if field is not None and field.branches:
            parts = ", ".join(f"{name} {receptive.window_text(size)}"
                              for name, size in field.branches.items())
            notes.append(f"  fields differ at {node.name}: {parts}")
    return notes


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


def _write_text(unit: Unit, quiet: bool, rf: bool, out: TextIO) -> None:
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
    out.write(layer_table(network, rf) + "\n")
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
            _write_text(unit, args.quiet, args.rf, out)
        out.write(tally(units, len(paths)) + "\n")
    return _exit_code(units)


def add_parser(sub: Any) -> None:
    """Register ``check``."""
    p = sub.add_parser("check", help="check shapes, parameter counts and expect lines")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="files, directories (their *.cnn, recursively) or globs; - for stdin")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print only problems and the final tally")
    p.add_argument("--rf", action="store_true",
                   help="receptive field columns: size, jump (effective stride) and offset")
    add_spec_options(p)
    p.set_defaults(run=run)
