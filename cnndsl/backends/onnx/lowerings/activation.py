"""Activations and ``softmax``."""

from __future__ import annotations

import math

import numpy as np

from cnndsl import ir
from cnndsl.backends.onnx.graph import GraphBuilder, Unsupported, shape_of
from cnndsl.backends.onnx.lowering import lowering
from cnndsl.backends.onnx.opsets import GELU_OPSET, HARDSWISH_OPSET, SOFTMAX_ND_OPSET
from cnndsl.diagnostics import Span


def _hardsigmoid(g: GraphBuilder, x: str, output: str, name: str, span: Span | None) -> str:
    # torch: relu6(x + 3) / 6 == clip(x / 6 + 1/2, 0, 1)
    return g.emit("HardSigmoid", [x], output, name, span, alpha=1.0 / 6.0, beta=0.5)


@lowering("activation")
def _lower_activation(g: GraphBuilder, node: ir.Activation) -> None:
    (x,) = g.inputs(node)
    name, span, function = node.name, node.span, node.function
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
    if function in simple:
        g.emit(simple[function], [x], name, name, span)
    elif function == "leaky_relu":
        g.emit("LeakyRelu", [x], name, name, span, alpha=node.negative_slope)
    elif function == "relu6":
        low = g.const(f"{name}/min", 0.0, np.float32)
        high = g.const(f"{name}/max", 6.0, np.float32)
        g.emit("Clip", [x, low, high], name, name, span)
    elif function == "hardsigmoid":
        _hardsigmoid(g, x, name, name, span)
    elif function == "hardswish":
        if g.opset >= HARDSWISH_OPSET:
            g.emit("HardSwish", [x], name, name, span)
        else:
            gate = _hardsigmoid(g, x, f"{name}/gate", f"{name}/gate", span)
            g.emit("Mul", [x, gate], name, name, span)
    elif function == "silu":
        gate = g.emit("Sigmoid", [x], f"{name}/sigmoid", f"{name}/sigmoid", span)
        g.emit("Mul", [x, gate], name, name, span)
    elif function == "gelu":
        if g.opset >= GELU_OPSET:
            g.emit("Gelu", [x], name, name, span, approximate="none")
            return
        # exact form: x * (1 + erf(x / sqrt 2)) / 2
        scaled = g.emit("Div", [x, g.const(f"{name}/sqrt2", math.sqrt(2.0), np.float32)],
                        f"{name}/scaled", f"{name}/scaled", span)
        erf = g.emit("Erf", [scaled], f"{name}/erf", f"{name}/erf", span)
        one = g.emit("Add", [erf, g.const(f"{name}/one", 1.0, np.float32)], f"{name}/onep",
                     f"{name}/onep", span)
        half = g.emit("Mul", [x, g.const(f"{name}/half", 0.5, np.float32)], f"{name}/halfx",
                      f"{name}/halfx", span)
        g.emit("Mul", [half, one], name, name, span)
    else:  # pragma: no cover - the IR's Literal lists every function
        raise Unsupported(f"activation {function} has no ONNX lowering")


@lowering("softmax")
def _lower_softmax(g: GraphBuilder, node: ir.Softmax) -> None:
    rank = len(shape_of(g, node.inputs[0])) + 1
    if g.opset < SOFTMAX_ND_OPSET and node.axis != rank - 1:
        raise Unsupported(
            f"softmax over axis {node.axis} of a rank-{rank} tensor needs opset "
            f"{SOFTMAX_ND_OPSET} (ONNX Softmax before 13 flattens the trailing axes)",
            f"use --opset {SOFTMAX_ND_OPSET} or newer")
    g.emit("Softmax", g.inputs(node), node.name, node.name, node.span, axis=node.axis)
