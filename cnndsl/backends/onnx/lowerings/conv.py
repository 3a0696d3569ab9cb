"""Convolutions: ``conv`` and ``conv_transpose``."""

from __future__ import annotations

from cnndsl import ir
from cnndsl.backends.onnx.graph import GraphBuilder
from cnndsl.backends.onnx.lowering import lowering


@lowering("conv")
def _lower_conv(g: GraphBuilder, node: ir.Conv) -> None:
    inputs = g.weighted_inputs(node)
    g.emit("Conv", inputs, node.name, node.name, node.span, kernel_shape=list(node.kernel),
           strides=list(node.stride), pads=list(node.padding), dilations=list(node.dilation),
           group=node.groups)


@lowering("conv_transpose")
def _lower_conv_transpose(g: GraphBuilder, node: ir.ConvTranspose) -> None:
    inputs = g.weighted_inputs(node)
    ph, pw = node.padding
    g.emit("ConvTranspose", inputs, node.name, node.name, node.span,
           kernel_shape=list(node.kernel), strides=list(node.stride), pads=[ph, pw, ph, pw],
           output_padding=list(node.output_padding), dilations=list(node.dilation),
           group=node.groups)
