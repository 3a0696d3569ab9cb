"""The command line: ``cnndsl check | ir | summary | compile | fcn``.

Exit codes: 0 when everything holds, 1 when a spec has errors or a failed ``expect``, 2 for usage
or I/O errors. Nothing here imports torch unless a command asks for the PyTorch backend.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from cnndsl import ir
from cnndsl.compiler import CheckResult, check, parse_input_sizes
from cnndsl.diagnostics import Code, render_all
from cnndsl.syntax.parser import MAX_SOURCE_BYTES
from cnndsl.tables import format_table, kind_label

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2


def _parse_set(values: Sequence[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in values or ():
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"cnndsl: --set takes NAME=VALUE, got {item!r}")
        try:
            value: Any = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
        params[key.strip()] = value
    return params


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", metavar="SIZE",
                        help="bind symbolic sizes (H=512,W=512) or set the input (3x512x512)")
    parser.add_argument("--network", metavar="NAME", help="which network of the file")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="override a network parameter, e.g. --set classes=10")


def _check_one(path: str, args: argparse.Namespace) -> CheckResult:
    options: dict[str, Any] = dict(
        network=args.network, input=args.input, params=_parse_set(args.set)
    )
    if path == "-":
        # Read no further than the size limit; parse() reports a longer text.
        data = sys.stdin.buffer.read(MAX_SOURCE_BYTES + 1)
        return check(data.decode("utf-8", "surrogateescape"), file="<stdin>", **options)
    return check(Path(path), **options)


def _exit_code(results: Sequence[CheckResult]) -> int:
    io_error = any(d.code is Code.IO and d.span.file == r.file for r in results
                   for d in r.diagnostics)
    if io_error:
        return EXIT_USAGE
    return EXIT_OK if all(r.ok for r in results) else EXIT_SPEC


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


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    """Check specs; print diagnostics, then a per-layer table and totals for each."""
    results = [_check_one(path, args) for path in args.files]
    if args.format == "json":
        out.write(json.dumps([result_json(r) for r in results], indent=2) + "\n")
        return _exit_code(results)
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
    return _exit_code(results)


def cmd_ir(args: argparse.Namespace, out: TextIO) -> int:
    """Print the IR (or its JSON Schema) as JSON."""
    if args.schema:
        out.write(json.dumps(ir.json_schema(), indent=2) + "\n")
        return EXIT_OK
    if not args.file:
        sys.stderr.write("cnndsl ir: give a FILE or --schema\n")
        return EXIT_USAGE
    result = _check_one(args.file, args)
    if result.network is None:
        sys.stderr.write(render_all(result.diagnostics, result.sources) + "\n")
        return _exit_code([result])
    out.write(result.network.model_dump_json(indent=2) + "\n")
    return _exit_code([result])


def _load_or_report(args: argparse.Namespace) -> tuple[CheckResult, int | None]:
    result = _check_one(args.file, args)
    if not result.ok:
        sys.stderr.write(render_all(result.diagnostics, result.sources) + "\n")
        return result, _exit_code([result])
    return result, None


def cmd_summary(args: argparse.Namespace, out: TextIO) -> int:
    """Per-layer parameters, MACs and memory, with totals and the budget planner."""
    from cnndsl.analysis import summary

    result, code = _load_or_report(args)
    if code is not None:
        return code
    assert result.network is not None
    return summary.run_cli(result.network, args, out)


def cmd_compile(args: argparse.Namespace, out: TextIO) -> int:
    """Compile to PyTorch source or an ONNX file."""
    result, code = _load_or_report(args)
    if code is not None:
        return code
    assert result.network is not None
    if args.to == "torch":
        from cnndsl.backends.torch import emit

        return emit.run_cli(result.network, args, out)
    from cnndsl.backends import onnx as onnx_backend

    return onnx_backend.run_cli(result.network, args, out, result.sources)


def cmd_fcn(args: argparse.Namespace, out: TextIO) -> int:
    """Make a classifier fully convolutional; write the spec, its weights or an ONNX model."""
    from cnndsl.transforms import fully_convolutional

    result, code = _load_or_report(args)
    if code is not None:
        return code
    assert result.network is not None
    return fully_convolutional.run_cli(result.network, args, out, result.sources)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cnndsl`` command."""
    parser = argparse.ArgumentParser(prog="cnndsl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="check shapes, parameter counts and expect lines")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-layer table")
    _common(p)
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("ir", help="print the checked IR as JSON")
    p.add_argument("file", nargs="?", metavar="FILE")
    p.add_argument("--schema", action="store_true", help="print the IR's JSON Schema")
    _common(p)
    p.set_defaults(run=cmd_ir)

    p = sub.add_parser("summary", help="parameters, MACs and memory per layer")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--dtype", default="fp32", choices=("fp32", "fp16", "bf16", "mixed"))
    p.add_argument("--optimizer", default="sgd",
                   choices=("sgd", "momentum", "adam", "adamw"))
    p.add_argument("--budget", metavar="BYTES", help="largest batch that fits, e.g. 16GiB")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _common(p)
    p.set_defaults(run=cmd_summary)

    p = sub.add_parser("compile", help="generate PyTorch source or an ONNX model")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--to", choices=("torch", "onnx"), required=True)
    p.add_argument("-o", "--output", metavar="PATH", help="where to write (default: stdout "
                   "for torch, NAME.onnx for onnx)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: newest that onnxruntime runs)")
    p.add_argument("--static-batch", action="store_true", help="ONNX: fix the batch at 1")
    p.add_argument("--weights", metavar="FILE", help="ONNX: weights from .npz or .safetensors")
    p.add_argument("--fold-bn", action="store_true", help="ONNX: fold batch norm into convs")
    p.add_argument("--external-data", action="store_true",
                   help="ONNX: weights in OUTPUT.data beside the model (automatic past 2 GB)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random initialisation")
    p.add_argument("--detect", action="store_true",
                   help="ONNX: append YOLO decoding and NonMaxSuppression (image in, boxes out)")
    p.add_argument("--score-threshold", type=float, default=0.25, help="--detect: min score")
    p.add_argument("--iou-threshold", type=float, default=0.45, help="--detect: NMS IoU")
    p.add_argument("--max-detections", type=int, default=100, help="--detect: per image")
    _common(p)
    p.set_defaults(run=cmd_compile)

    p = sub.add_parser("fcn", help="dense layers after a flatten -> convolutions")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--to", choices=("cnn", "torch", "onnx"), default="cnn",
                   help="cnn: the converted spec (default); torch: its state dict, keyed by "
                   "the printed spec's paths; onnx: the converted model with weights")
    p.add_argument("-o", "--output", metavar="PATH", help="where to write (cnn: default stdout)")
    p.add_argument("--at", metavar="SIZE", help="input size of the result, e.g. 3x384x384 "
                   "(--input sets the training size the dense layers were trained at)")
    p.add_argument("--weights", metavar="FILE", help="the source's state dict (.pt, .npz or "
                   ".safetensors); default: its seeded initialisation")
    p.add_argument("--opset", type=int, help="ONNX opset")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation")
    _common(p)
    p.set_defaults(run=cmd_fcn)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) and EXIT_USAGE
    if getattr(args, "input", None):
        try:
            parse_input_sizes(args.input)
        except ValueError as error:  # a bad flag is a usage error, not an error in the spec
            sys.stderr.write(f"cnndsl: --input: {error}\n")
            return EXIT_USAGE
    try:
        return int(args.run(args, out or sys.stdout))
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            sys.stderr.write(exit_.code + "\n")
            return EXIT_USAGE
        return int(exit_.code or 0)
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
