"""Fully connected layers: ``linear`` as ``Gemm``."""

from __future__ import annotations

from cnndsl import ir
from cnndsl.backends.onnx.graph import GraphBuilder
from cnndsl.backends.onnx.lowering import lowering


@lowering("linear")
def _lower_linear(g: GraphBuilder, node: ir.Linear) -> None:
    inputs = g.weighted_inputs(node)
    g.emit("Gemm", inputs, node.name, node.name, node.span, transB=1)
