"""``cnndsl compile``: PyTorch source or an ONNX model from a spec."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

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
from cnndsl.cli.weights import add_weights_options, load_network_weights
from cnndsl.diagnostics import CnnError, Code
from cnndsl.files import atomic_write


def _to_torch(network: ir.Network, args: argparse.Namespace, out: TextIO,
              sources: dict[str, str]) -> int:
    """Stdout, or an atomic write to ``-o``."""
    from cnndsl.backends.torch.emit import emit
    from cnndsl.cli.common import parse_set

    spec: str = args.file if args.file != "-" else sources.get("<stdin>", "")
    source = emit(network, spec=spec, input=args.input, params=parse_set(args.set))
    target = args.output
    if not target:
        out.write(source)
        return EXIT_OK
    try:
        atomic_write(Path(target), source)
    except OSError as error:
        sys.stderr.write(f"cnndsl: cannot write {target}: {error.strerror}\n")
        return EXIT_USAGE
    status(args, out).write(f"wrote {target} ({network.name}, {network.total_params:,} "
                            "parameters)\n")
    return EXIT_OK


def _to_onnx(network: ir.Network, args: argparse.Namespace, out: TextIO,
             sources: dict[str, str]) -> int:
    """Write the model; 1 for spec errors, 2 for usage."""
    from cnndsl.backends.onnx import build_onnx, write_onnx

    path = Path(args.output or f"{network.name}.onnx")
    weights = None
    if args.weights:
        weights, code = load_network_weights(network, args.weights, args, sources, out)
        if weights is None:
            return code
    try:
        model = build_onnx(network, opset=args.opset, dynamic_batch=not args.static_batch,
                           weights=weights, fold_batchnorm=args.fold_bn, seed=args.seed)
        if args.detect:
            from cnndsl.backends.onnx.detect import add_detection

            model = add_detection(model, network, score_threshold=args.score_threshold,
                                  iou_threshold=args.iou_threshold,
                                  max_detections=args.max_detections)
    except CnnError as error:
        report(args, error.diagnostics, sources, out)
        return EXIT_USAGE if any(d.code is Code.IO for d in error.diagnostics) else EXIT_SPEC
    except ValueError as error:
        sys.stderr.write(f"cnndsl compile: {error}\n")
        return EXIT_USAGE
    try:
        files = write_onnx(model, path, external_data=args.external_data or None)
    except OSError as error:
        sys.stderr.write(f"cnndsl compile: cannot write {path}: {error.strerror}\n")
        return EXIT_USAGE
    written = f"{files[0]} and {files[1]} (its weights)" if len(files) > 1 else str(path)
    progress = status(args, out)
    progress.write(f"wrote {written} (network {network.name}, opset {model.opset}, "
                   f"{len(model.graph.nodes)} nodes, {network.total_params:,} parameters)\n")
    if args.detect:
        heads = sum(isinstance(node, ir.DetectHead) for node in network.nodes)
        progress.write(f"  {heads} detect heads decoded, then NonMaxSuppression; "
                       "outputs boxes, scores, classes, batch_index\n")
    return EXIT_OK


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Compile to PyTorch source or an ONNX file."""
    result, code = load_or_report(args, out)
    if code is not None:
        return code
    assert result.network is not None
    if args.to == "torch":
        return _to_torch(result.network, args, out, result.sources)
    return _to_onnx(result.network, args, out, result.sources)


def add_parser(sub: Any) -> None:
    """Register ``compile``."""
    p = sub.add_parser("compile", help="generate PyTorch source or an ONNX model")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--to", choices=("torch", "onnx"), required=True)
    p.add_argument("-o", "--output", metavar="PATH", help="where to write (default: stdout "
                   "for torch, NAME.onnx for onnx)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: newest that onnxruntime runs)")
    p.add_argument("--static-batch", action="store_true", help="ONNX: fix the batch at 1")
    p.add_argument("--weights", metavar="CKPT", help="ONNX: weights from a checkpoint "
                   "(.safetensors, .npz; .pt/.pth with torch), paired per --match/--rename")
    p.add_argument("--fold-bn", action="store_true", help="ONNX: fold batch norm into convs")
    p.add_argument("--external-data", action="store_true",
                   help="ONNX: weights in OUTPUT.data beside the model (automatic past 2 GB)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random initialisation")
    p.add_argument("--detect", action="store_true",
                   help="ONNX: append YOLO decoding and NonMaxSuppression (image in, boxes out)")
    p.add_argument("--score-threshold", type=float, default=0.25, help="--detect: min score")
    p.add_argument("--iou-threshold", type=float, default=0.45, help="--detect: NMS IoU")
    p.add_argument("--max-detections", type=int, default=100, help="--detect: per image")
    add_weights_options(p)
    add_spec_options(p)
    p.set_defaults(run=run)
