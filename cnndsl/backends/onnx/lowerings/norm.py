"""Normalisation: ``batchnorm`` (skipped where folded), ``groupnorm`` and ``lrn``."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnndsl import ir
from cnndsl.backends.onnx.graph import GraphBuilder, shape_of
from cnndsl.backends.onnx.lowering import lowering


@lowering("batchnorm")
def _lower_batchnorm(g: GraphBuilder, node: ir.BatchNorm) -> None:
    if node.name in g.folded:
        return
    keys = [f"{node.name}.{s}" for s in ("weight", "bias", "running_mean", "running_var")]
    g.emit("BatchNormalization", [*g.inputs(node), *keys], node.name, node.name, node.span,
           epsilon=node.eps)


@lowering("groupnorm")
def _lower_groupnorm(g: GraphBuilder, node: Any) -> None:
    # GroupNormalization needs opset 18 (and changed meaning at 21); from opset 11 on: view as
    # N x G x rest, InstanceNormalization (unit scale, zero shift per group), view back,
    # then the per-channel scale and shift, broadcast over the positions.
    (x,) = g.inputs(node)
    name, span, groups = node.name, node.span, node.groups
    rank = len(shape_of(g, node.inputs[0]))
    grouped = g.emit("Reshape", [x, g.const(f"{name}/groups", [0, groups, -1])],
                     f"{name}/grouped", f"{name}/grouped", span)
    normed = g.emit("InstanceNormalization",
                    [grouped, g.const(f"{name}/one", np.ones(groups), np.float32),
                     g.const(f"{name}/zero", np.zeros(groups), np.float32)],
                    f"{name}/normed", f"{name}/normed", span, epsilon=node.eps)
    shape = g.emit("Shape", [x], f"{name}/shape", f"{name}/shape", span)
    back = g.emit("Reshape", [normed, shape], f"{name}/ungrouped", f"{name}/ungrouped", span)
    per_channel = g.const(f"{name}/per_channel", [node.channels] + [1] * (rank - 1))
    scale = g.emit("Reshape", [f"{name}.weight", per_channel], f"{name}/scale",
                   f"{name}/scale", span)
    shift = g.emit("Reshape", [f"{name}.bias", per_channel], f"{name}/shift", f"{name}/shift",
                   span)
    scaled = g.emit("Mul", [back, scale], f"{name}/scaled", f"{name}/scaled", span)
    g.emit("Add", [scaled, shift], name, name, span)


@lowering("lrn")
def _lower_lrn(g: GraphBuilder, node: ir.LRN) -> None:
    (x,) = g.inputs(node)
    name, span, size = node.name, node.span, node.size
    if size % 2:
        # ONNX LRN divides alpha by size and centres the window as torch does for odd sizes.
        g.emit("LRN", [x], name, name, span, size=size, alpha=node.alpha, beta=node.beta,
               bias=node.k)
        return
    # Even windows: torch's reaches size//2 back and (size-1)//2 forward, ONNX's the reverse.
    # Sum the squares over torch's window with a constant banded 1x1 convolution.
    channels = shape_of(g, node.inputs[0])[0]
    assert isinstance(channels, int)
    band = np.zeros((channels, channels, 1, 1), np.float32)
    for c in range(channels):
        band[c, max(0, c - size // 2): c + (size - 1) // 2 + 1, 0, 0] = node.alpha / size
    squared = g.emit("Mul", [x, x], f"{name}/squared", f"{name}/squared", span)
    summed = g.emit("Conv", [squared, g.const(f"{name}/window", band, np.float32)],
                    f"{name}/window_sum", f"{name}/window_sum", span, kernel_shape=[1, 1])
    base = g.emit("Add", [summed, g.const(f"{name}/k", node.k, np.float32)], f"{name}/base",
                  f"{name}/base", span)
    divisor = g.emit("Pow", [base, g.const(f"{name}/beta", node.beta, np.float32)],
                     f"{name}/divisor", f"{name}/divisor", span)
    g.emit("Div", [x, divisor], name, name, span)
