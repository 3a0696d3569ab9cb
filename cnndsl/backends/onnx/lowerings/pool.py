"""Pooling: windows (ceil mode as explicit end padding), global, adaptive and channel pooling."""

from __future__ import annotations

import numpy as np

from cnndsl import ir
from cnndsl.backends.onnx.graph import GraphBuilder, fixed, reduce_axes, shape_of
from cnndsl.backends.onnx.lowering import lowering


def _ceil_extra(size: int, out: int, kernel: int, stride: int, pad: int) -> int:
    """End padding beyond ``pad`` that makes floor-mode pooling produce ``out`` windows."""
    return max(0, (out - 1) * stride + kernel - size - 2 * pad)


@lowering("pool")
def _lower_pool(g: GraphBuilder, node: ir.Pool) -> None:
    (x,) = g.inputs(node)
    ph, pw = node.padding
    kernel, stride = list(node.kernel), list(node.stride)
    extra_h = extra_w = 0
    if node.ceil_mode:
        # ONNX runtimes disagree on ceil mode's last window; explicit end padding is exact.
        _, h, w = fixed(node, shape_of(g, node.inputs[0]), "ceil-mode pooling")
        _, oh, ow = fixed(node, tuple(node.shape or ()), "ceil-mode pooling")
        extra_h = _ceil_extra(h, oh, kernel[0], stride[0], ph)
        extra_w = _ceil_extra(w, ow, kernel[1], stride[1], pw)
    pads = [ph, pw, ph + extra_h, pw + extra_w]
    if node.mode == "max":
        g.emit("MaxPool", [x], node.name, node.name, node.span, kernel_shape=kernel,
               strides=stride, pads=pads)
        return
    if not (extra_h or extra_w):
        g.emit("AveragePool", [x], node.name, node.name, node.span, kernel_shape=kernel,
               strides=stride, pads=pads, count_include_pad=int(node.count_include_pad))
        return
    # torch counts the declared padding but not the ceil-mode overhang: pad with zeros first,
    # then average without counting the overhang.
    if node.count_include_pad and (ph or pw):
        pad_amounts = g.const(f"{node.name}/pads", [0, 0, ph, pw, 0, 0, ph, pw])
        x = g.emit("Pad", [x, pad_amounts], f"{node.name}/padded", f"{node.name}/pad",
                   node.span)
        pads = [0, 0, extra_h, extra_w]
    g.emit("AveragePool", [x], node.name, node.name, node.span, kernel_shape=kernel,
           strides=stride, pads=pads, count_include_pad=0)


@lowering("global_pool")
def _lower_global_pool(g: GraphBuilder, node: ir.GlobalPool) -> None:
    op = "GlobalMaxPool" if node.mode == "max" else "GlobalAveragePool"
    g.emit(op, g.inputs(node), node.name, node.name, node.span)


def _adaptive_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive windows: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _averaging_matrix(size: int, out: int) -> np.ndarray:
    matrix = np.zeros((out, size), np.float32)
    for i, (start, end) in enumerate(_adaptive_bounds(size, out)):
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


@lowering("adaptive_pool")
def _lower_adaptive_pool(g: GraphBuilder, node: ir.AdaptivePool) -> None:
    (x,) = g.inputs(node)
    _, h, w = fixed(node, shape_of(g, node.inputs[0]), "adaptive pooling")
    oh, ow = node.output_size
    name, span = node.name, node.span
    if h % oh == 0 and w % ow == 0:
        op = "MaxPool" if node.mode == "max" else "AveragePool"
        kernel = [h // oh, w // ow]
        g.emit(op, [x], name, name, span, kernel_shape=kernel, strides=kernel)
        return
    if node.mode == "avg":
        # Uneven windows: a mean over a rectangle is rows @ x @ cols^T, both constant.
        cols = g.const(f"{name}/cols", _averaging_matrix(w, ow).T, np.float32)
        rows = g.const(f"{name}/rows", _averaging_matrix(h, oh), np.float32)
        across = g.emit("MatMul", [x, cols], f"{name}/across", f"{name}/across", span)
        g.emit("MatMul", [rows, across], name, name, span)
        return
    # Uneven max windows: a maximum over a rectangle is a maximum over rows of column maxima.
    for axis, size, out in ((2, h, oh), (3, w, ow)):
        pieces = []
        for i, (start, end) in enumerate(_adaptive_bounds(size, out)):
            part = f"{name}/axis{axis}_{i}"
            sliced = g.emit("Slice", [x, g.const(f"{part}/starts", [start]),
                                      g.const(f"{part}/ends", [end]),
                                      g.const(f"{part}/axes", [axis])],
                            f"{part}/slice", f"{part}/slice", span)
            pieces.append(reduce_axes(g, "ReduceMax", sliced, [axis], f"{part}/max", span))
        output = name if axis == 3 else f"{name}/rows"
        x = g.emit("Concat", pieces, output, output, span, axis=axis)


@lowering("channel_pool")
def _lower_channel_pool(g: GraphBuilder, node: ir.ChannelPool) -> None:
    (x,) = g.inputs(node)
    c, h, w = shape_of(g, node.inputs[0])
    name, span, k = node.name, node.span, node.kernel
    if isinstance(h, int) and isinstance(w, int):
        target = g.const(f"{name}/shape", [0, c // k, k, h, w])
    else:
        # Symbolic sizes: take H and W from the runtime shape.
        shape = g.emit("Shape", [x], f"{name}/input_shape", f"{name}/input_shape", span)
        spatial = g.emit("Slice", [shape, g.const(f"{name}/from", [2]),
                                   g.const(f"{name}/to", [4])],
                         f"{name}/spatial", f"{name}/spatial", span)
        target = g.emit("Concat", [g.const(f"{name}/head", [0, c // k, k]), spatial],
                        f"{name}/shape", f"{name}/shape", span, axis=0)
    grouped = g.emit("Reshape", [x, target], f"{name}/grouped", f"{name}/grouped", span)
    reduce_axes(g, "ReduceMax", grouped, [2], name, span, keepdims=0)
