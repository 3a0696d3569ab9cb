"""``cnndsl weights``: a reference checkpoint converted to a spec's keys, or back; and the
``--match``/``--rename``/``--strict`` options that ``compile`` and ``fcn`` share with it."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING, Any, TextIO

from cnndsl import ir
from cnndsl.cli.common import (
    EXIT_OK,
    EXIT_SPEC,
    EXIT_USAGE,
    add_spec_options,
    load_or_report,
    report,
    status,
)
from cnndsl.diagnostics import CnnError, Code

if TYPE_CHECKING:
    import numpy as np


def add_weights_options(parser: argparse.ArgumentParser) -> None:
    """How a checkpoint is paired with the spec: --match, --rename, --strict."""
    parser.add_argument("--match", choices=("auto", "name", "order"), default="auto",
                        help="pair tensors by name, by order (shapes checked), or auto: names, "
                        "then order for the rest (default)")
    parser.add_argument("--rename", action="append", metavar="OLD=NEW", default=[],
                        help="replace a key prefix of the checkpoint first (repeatable), e.g. "
                        "--rename backbone.= ; a DDP 'module.' prefix goes by itself")
    parser.add_argument("--strict", action="store_true",
                        help="a tensor missing, unexpected or mismatched is an error (exit 1); "
                        "otherwise a warning, and the network keeps its seeded values there")


def load_network_weights(network: ir.Network, path: str, args: argparse.Namespace,
                         sources: dict[str, str], out: TextIO | None = None, *,
                         counters: bool = False) -> tuple[dict[str, np.ndarray] | None, int]:
    """The network's arrays from ``path`` per the options; prints the report (a warning to
    stderr, or its summary line to ``out``).

    Returns (arrays, 0), or (None, exit code) after printing the error.
    """
    from cnndsl.weights import network_weights, parse_rename

    try:
        found = network_weights(network, path, by=args.match,
                                rename=parse_rename(args.rename or ()), strict=args.strict,
                                seed=getattr(args, "seed", 0), counters=counters)
    except CnnError as error:
        report(args, error.diagnostics, sources, out)
        return None, EXIT_USAGE if any(d.code is Code.IO for d in error.diagnostics) \
            else EXIT_SPEC
    except ValueError as error:  # a bad --rename
        sys.stderr.write(f"cnndsl: {error}\n")
        return None, EXIT_USAGE
    if found.warning is not None:
        report(args, [found.warning], sources, out)
    elif out is not None:
        status(args, out).write(found.report.summary() + "\n")
    return found.arrays, EXIT_OK


def _to_reference(network: ir.Network, args: argparse.Namespace, sources: dict[str, str],
                  out: TextIO) -> tuple[dict[str, Any] | None, str, int]:
    """The spec-keyed ``--from`` file under the keys (and in the order) of ``--to-reference``."""
    from cnndsl.weights import parse_rename, read_checkpoint
    from cnndsl.weights.load import match_checkpoint, network_targets, report_span

    try:
        ours, code = load_network_weights(network, args.source, args, sources, out,
                                          counters=True)
        if ours is None:
            return None, "", code
        reference = read_checkpoint(args.to_reference)
        match = match_checkpoint(network_targets(network), reference, by=args.match,
                                 rename=parse_rename(args.rename or ()), network=network.name)
    except CnnError as error:
        report(args, error.diagnostics, sources, out)
        return None, "", EXIT_USAGE
    except ValueError as error:
        sys.stderr.write(f"cnndsl: {error}\n")
        return None, "", EXIT_USAGE
    paired = match.report
    if not paired.ok:
        diagnostic = paired.diagnostic(report_span(network, paired), strict=args.strict)
        if args.strict:
            report(args, [diagnostic], sources, out)
            return None, "", EXIT_SPEC
        note = f"the reference's tensors not paired are written as they are in {args.to_reference}"
        diagnostic = dataclasses.replace(diagnostic, notes=(*diagnostic.notes, note))
        report(args, [diagnostic], sources, out)
    import numpy as np

    inverse = {theirs: ours_key for ours_key, theirs in {**match.pairs,
                                                          **match.counters}.items()}
    arrays: dict[str, Any] = {}
    for key, value in reference.tensors.items():
        mine = inverse.get(key)
        if mine is not None and mine in ours:
            arrays[key] = np.asarray(ours[mine]).reshape(value.shape).astype(value.dtype)
        else:
            arrays[key] = value
    return arrays, f"the keys of {args.to_reference} ({paired.how or 'nothing paired'})", EXIT_OK


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Convert ``--from`` to the spec's keys, or with ``--to-reference`` to a reference's."""
    from cnndsl.weights import write_checkpoint

    result, code = load_or_report(args, out)
    if code is not None:
        return code
    network, sources = result.network, result.sources
    assert network is not None
    if args.to_reference:
        arrays, keys, code = _to_reference(network, args, sources, out)
    else:
        arrays, code = load_network_weights(network, args.source, args, sources, out,
                                            counters=True)
        keys = f"the keys of {network.name}"
    if arrays is None:
        return code
    try:
        write_checkpoint(arrays, args.output)
    except (OSError, ValueError, CnnError) as error:
        reason = error.strerror if isinstance(error, OSError) else error
        sys.stderr.write(f"cnndsl weights: cannot write {args.output}: {reason}\n")
        return EXIT_USAGE
    status(args, out).write(f"wrote {args.output}: {len(arrays)} tensors from {args.source} "
                            f"under {keys}\n")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``weights``."""
    p = sub.add_parser("weights", help="convert a checkpoint to the spec's keys, or back")
    p.add_argument("file", metavar="FILE", help="the spec")
    p.add_argument("--from", dest="source", metavar="CKPT", required=True,
                   help="the checkpoint (.pt, .pth, .safetensors or .npz)")
    p.add_argument("-o", "--output", metavar="OUT", required=True,
                   help="where to write: .safetensors (no torch needed to read it back), .npz "
                   "or .pt")
    p.add_argument("--to-reference", metavar="REF",
                   help="the other way: CKPT has the spec's keys; write them under the keys of "
                   "the reference checkpoint REF (its order, dtypes and extra tensors)")
    add_weights_options(p)
    add_spec_options(p)
    p.set_defaults(run=run)
