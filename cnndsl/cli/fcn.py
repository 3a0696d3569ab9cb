"""``cnndsl fcn``: a classifier made fully convolutional, as a spec, its weights or ONNX."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from cnndsl.cli.common import (
    EXIT_OK,
    EXIT_SPEC,
    EXIT_USAGE,
    add_spec_options,
    load_or_report,
    report,
    status,
)
from cnndsl.cli.weights import add_weights_options, load_network_weights
from cnndsl.compiler import check, parse_input_sizes
from cnndsl.diagnostics import CnnError
from cnndsl.files import atomic_write
from cnndsl.transforms.fully_convolutional import (
    convert_state_dict,
    fully_convolutional,
    source_weights,
    write_state,
)
from cnndsl.transforms.graph import infer_shapes
from cnndsl.transforms.printer import print_spec, printed_names


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Print the converted spec, or write its weights or ONNX model."""
    result, code = load_or_report(args, out)
    if code is not None:
        return code
    network, sources = result.network, result.sources
    assert network is not None
    try:
        converted = fully_convolutional(network)
        at = parse_input_sizes(args.at)[1] if args.at else None
        if args.at and at is None:
            raise ValueError(f"--at takes a size such as 3x384x384, got {args.at!r}")
        deployed = infer_shapes(converted.network, at)
    except CnnError as error:
        report(args, error.diagnostics, sources, out)
        return EXIT_SPEC
    except ValueError as error:
        sys.stderr.write(f"cnndsl fcn: {error}\n")
        return EXIT_USAGE
    if not converted.conversions:
        sys.stderr.write(f"cnndsl fcn: {network.name} has no dense layer after a flatten\n")
    if args.to in ("torch", "onnx") and not args.output:
        sys.stderr.write(f"cnndsl fcn: --to {args.to} needs -o PATH\n")
        return EXIT_USAGE
    try:
        if args.to == "cnn":
            text = print_spec(deployed, name=f"{network.name}_fcn", comment=(
                f"{network.name} from {network.file}, fully convolutional: "
                f"{', '.join(converted.conversions) or 'no'} dense layers as convolutions\n"
                "(written by `cnndsl fcn`)"))
            if args.output:
                atomic_write(args.output, text)
            else:
                out.write(text)
            return EXIT_OK
        if args.weights:
            source, code = load_network_weights(network, args.weights, args, sources,
                                                counters=args.to == "torch")
            if source is None:
                return code
        else:
            source = source_weights(network, args.to, args.seed)
        if args.to == "onnx":
            from cnndsl.backends.onnx import build_onnx, write_onnx

            state = convert_state_dict(source, converted.conversions)
            write_onnx(build_onnx(deployed, weights=state, opset=args.opset), args.output)
        else:
            printed = check(print_spec(deployed, expects=False)).network
            assert printed is not None
            rename = printed_names(deployed, printed)
            write_state(convert_state_dict(source, converted.conversions, rename), args.output)
    except CnnError as error:
        report(args, error.diagnostics, sources, out)
        return EXIT_SPEC
    except (OSError, ValueError, KeyError) as error:
        sys.stderr.write(f"cnndsl fcn: {error}\n")
        return EXIT_USAGE
    status(args, out).write(f"wrote {args.output} ({network.name}, "
                            f"{len(converted.conversions)} dense layers as convolutions, "
                            f"output {deployed.output_shapes()})\n")
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``fcn``."""
    p = sub.add_parser("fcn", help="dense layers after a flatten -> convolutions")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--to", choices=("cnn", "torch", "onnx"), default="cnn",
                   help="cnn: the converted spec (default); torch: its state dict, keyed by "
                   "the printed spec's paths; onnx: the converted model with weights")
    p.add_argument("-o", "--output", metavar="PATH", help="where to write (cnn: default stdout)")
    p.add_argument("--at", metavar="SIZE", help="input size of the result, e.g. 3x384x384 "
                   "(--input sets the training size the dense layers were trained at)")
    p.add_argument("--weights", metavar="CKPT", help="the source's checkpoint (.pt, .npz or "
                   ".safetensors), paired per --match/--rename; default: its seeded "
                   "initialisation")
    p.add_argument("--opset", type=int, help="ONNX opset")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation")
    add_weights_options(p)
    add_spec_options(p)
    p.set_defaults(run=run)
