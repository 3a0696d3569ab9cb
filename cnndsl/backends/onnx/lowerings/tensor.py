"""Tensor operations: inputs, identity (and dropout, the identity at inference), flatten,
upsample, add, mul and concat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnndsl import ir
from cnndsl.backends.onnx.graph import GraphBuilder
from cnndsl.backends.onnx.lowering import lowering


@lowering("input")
def _lower_input(g: GraphBuilder, node: ir.Input) -> None:
    """Graph inputs become value infos, not nodes."""


@lowering("identity", "dropout")
def lower_identity(g: GraphBuilder, node: ir.Node) -> None:
    """The node's input, unchanged (``Identity``)."""
    g.emit("Identity", g.inputs(node), node.name, node.name, node.span)


@lowering("flatten")
def _lower_flatten(g: GraphBuilder, node: ir.Flatten) -> None:
    g.emit("Flatten", g.inputs(node), node.name, node.name, node.span, axis=1)


@lowering("upsample")
def _lower_upsample(g: GraphBuilder, node: ir.Upsample) -> None:
    (x,) = g.inputs(node)
    attributes: dict[str, Any] = {}
    scales = g.const(f"{node.name}/scales", [1.0, 1.0, *node.scale], np.float32)
    # opset 11 and 12 need the (unused) roi input; later opsets accept an empty name.
    roi = g.const(f"{node.name}/roi", np.zeros(0), np.float32) if g.opset < 13 else ""
    if node.mode == "nearest":
        # torch nearest: src = floor(dst / scale)
        attributes.update(mode="nearest", coordinate_transformation_mode="asymmetric",
                          nearest_mode="floor")
    else:
        # torch bilinear, align_corners=False: src = (dst + 0.5) / scale - 0.5
        attributes.update(mode="linear", coordinate_transformation_mode="half_pixel")
    g.emit("Resize", [x, roi, scales], node.name, node.name, node.span, **attributes)


@lowering("add")
def _lower_add(g: GraphBuilder, node: ir.Add) -> None:
    inputs = g.inputs(node)
    op = "Add" if len(inputs) == 2 else "Sum"
    g.emit(op, inputs, node.name, node.name, node.span)


def _lower_binary(op: str) -> Callable[[GraphBuilder, ir.Node], None]:
    def lower(g: GraphBuilder, node: ir.Node) -> None:
        g.emit(op, g.inputs(node), node.name, node.name, node.span)

    return lower


@lowering("concat")
def _lower_concat(g: GraphBuilder, node: ir.Concat) -> None:
    g.emit("Concat", g.inputs(node), node.name, node.name, node.span, axis=node.axis)


lowering("mul")(_lower_binary("Mul"))
