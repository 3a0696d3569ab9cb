"""Shape inference: each node kind owns one rule from input shapes to its output shape.

Shapes exclude the batch dimension, which is always symbolic: ``(C, H, W)`` for feature maps,
``(F,)`` for feature vectors. Sizes may be symbolic polynomials (see ``symbolic.py``). A rule
raises ``ShapeError`` with the code of what went wrong; the elaborator turns that into a
positioned diagnostic at the layer that caused it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cnndsl import ir
from cnndsl.diagnostics import Code
from cnndsl.symbolic import Dim, ceildiv, dim_str, floordiv, simplify

Shape = tuple[Dim, ...]


class ShapeError(Exception):
    """A shape rule failed; carries the diagnostic code and message."""

    def __init__(self, code: Code, message: str, *notes: str):
        super().__init__(message)
        self.code = code
        self.message = message
        self.notes = notes


def fmt(shape: Shape) -> str:
    """``N x 64 x 56 x 56``."""
    return ir.shape_str(shape)


def _map(node: ir.Node, shape: Shape, what: str) -> tuple[Dim, Dim, Dim]:
    if len(shape) != 3:
        raise ShapeError(
            Code.RANK_MISMATCH,
            f"{what} needs a feature map N x C x H x W, but its input is {fmt(shape)}",
            "a flatten or linear layer came before it" if len(shape) == 1 else "",
        )
    c, h, w = shape
    return c, h, w


def _check_channels(actual: Dim, expected: int, what: str) -> None:
    if actual != expected:
        raise ShapeError(
            Code.CHANNEL_MISMATCH, f"{what} expects {expected} channels but receives {actual}"
        )


def _window(size: Dim, kernel: int, stride: int, pad_before: int, pad_after: int,
            dilation: int, axis: str, what: str) -> Dim:
    padded = simplify(size + pad_before + pad_after)
    reach = dilation * (kernel - 1) + 1
    if isinstance(padded, int) and padded < reach:
        raise ShapeError(
            Code.KERNEL_TOO_LARGE,
            f"{what} kernel spans {reach} along {axis} but the padded input is only {padded}",
        )
    return simplify(floordiv(padded - reach, stride) + 1)


def _positive(shape: Shape, what: str) -> Shape:
    for dim in shape:
        if isinstance(dim, int) and dim <= 0:
            raise ShapeError(Code.EMPTY_OUTPUT, f"{what} output {fmt(shape)} has a size of {dim}")
    return shape


def conv(node: ir.Conv, inputs: Sequence[Shape]) -> Shape:
    """Convolution: channels must match; H' = floor((H + pads - d(k-1) - 1)/s) + 1."""
    c, h, w = _map(node, inputs[0], "convolution")
    _check_channels(c, node.in_channels, "convolution")
    if node.in_channels % node.groups or node.out_channels % node.groups:
        raise ShapeError(
            Code.CHANNEL_MISMATCH,
            f"groups={node.groups} must divide both {node.in_channels} input and "
            f"{node.out_channels} output channels",
        )
    top, left, bottom, right = node.padding
    height = _window(h, node.kernel[0], node.stride[0], top, bottom, node.dilation[0], "height",
                     "convolution")
    width = _window(w, node.kernel[1], node.stride[1], left, right, node.dilation[1], "width",
                    "convolution")
    return _positive((node.out_channels, height, width), "convolution")


def conv_transpose(node: ir.ConvTranspose, inputs: Sequence[Shape]) -> Shape:
    """Transposed convolution: H' = (H-1)s - 2p + d(k-1) + output_padding + 1."""
    c, h, w = _map(node, inputs[0], "transposed convolution")
    _check_channels(c, node.in_channels, "transposed convolution")
    sizes = []
    for size, k, s, p, op, d in zip(
        (h, w), node.kernel, node.stride, node.padding, node.output_padding, node.dilation,
        strict=True,
    ):
        if op >= max(s, d):
            raise ShapeError(
                Code.BAD_VALUE, "output_padding must be smaller than stride or dilation"
            )
        sizes.append(simplify((size - 1) * s - 2 * p + d * (k - 1) + op + 1))
    return _positive((node.out_channels, *sizes), "transposed convolution")


def batchnorm(node: ir.BatchNorm, inputs: Sequence[Shape]) -> Shape:
    """Batch norm keeps the shape; its channel count must match."""
    shape = inputs[0]
    _check_channels(shape[0], node.channels, "batch norm")
    return shape


def same(node: ir.Node, inputs: Sequence[Shape]) -> Shape:
    """Element-wise layers keep the shape."""
    return inputs[0]


def lrn(node: ir.LRN, inputs: Sequence[Shape]) -> Shape:
    """Local response normalisation keeps a feature map's shape."""
    _map(node, inputs[0], "local response normalisation")
    return inputs[0]


def pool(node: ir.Pool, inputs: Sequence[Shape]) -> Shape:
    """Pooling, floor or ceil mode as PyTorch (a last window starting in the padding is dropped)."""
    c, h, w = _map(node, inputs[0], f"{node.mode} pooling")
    sizes = []
    for size, k, s, p, axis in zip((h, w), node.kernel, node.stride,
                                   node.padding, ("height", "width"), strict=True):
        if 2 * p > k:
            raise ShapeError(Code.BAD_VALUE, f"pooling padding {p} exceeds half the kernel {k}")
        padded = simplify(size + 2 * p)
        if isinstance(padded, int) and padded < k:
            raise ShapeError(
                Code.KERNEL_TOO_LARGE,
                f"pooling kernel {k} is larger than the padded input {padded} along {axis}",
            )
        if not node.ceil_mode:
            out = simplify(floordiv(padded - k, s) + 1)
        else:
            out = simplify(ceildiv(padded - k, s) + 1)
            if isinstance(out, int) and isinstance(size, int) and (out - 1) * s >= size + p:
                out -= 1
            elif not isinstance(out, int) and s > k - p:
                # The dropped last window, symbolically: the output is the smaller of
                # ceil((H+2p-k)/s)+1 and ceil((H+p)/s) (windows starting before the right
                # padding), and the second is never larger exactly when s > k - p.
                out = ceildiv(size + p, s)
        sizes.append(out)
    return _positive((c, *sizes), "pooling")


def global_pool(node: ir.GlobalPool, inputs: Sequence[Shape]) -> Shape:
    """Global pooling to C x 1 x 1."""
    c, _, _ = _map(node, inputs[0], "global pooling")
    return (c, 1, 1)


def adaptive_pool(node: ir.AdaptivePool, inputs: Sequence[Shape]) -> Shape:
    """Adaptive pooling to a fixed size."""
    c, _, _ = _map(node, inputs[0], "adaptive pooling")
    return (c, *node.output_size)


def channel_pool(node: ir.ChannelPool, inputs: Sequence[Shape]) -> Shape:
    """Max pooling across channels: the kernel must divide the channel count."""
    c, h, w = _map(node, inputs[0], "channel pooling")
    if not isinstance(c, int) or c % node.kernel:
        raise ShapeError(
            Code.CHANNEL_MISMATCH,
            f"channel pooling kernel {node.kernel} does not divide {c} channels",
        )
    return (c // node.kernel, h, w)


def flatten(node: ir.Flatten, inputs: Sequence[Shape]) -> Shape:
    """Flatten to one feature axis."""
    total: Dim = 1
    for dim in inputs[0]:
        total = simplify(total * dim)
    return (total,)


def linear(node: ir.Linear, inputs: Sequence[Shape]) -> Shape:
    """A linear layer needs a flat input of in_features."""
    shape = inputs[0]
    if len(shape) != 1:
        raise ShapeError(
            Code.RANK_MISMATCH,
            f"linear layer needs a flat input N x F, but its input is {fmt(shape)}",
            "insert 'flatten' (or 'gap -> flatten') before it",
        )
    if not isinstance(shape[0], int):
        raise ShapeError(
            Code.SHAPE_MISMATCH,
            f"linear layer needs a fixed number of features, but its input has "
            f"{dim_str(shape[0])}, which depends on the input size",
            "bind the sizes (--input H=224,W=224) or pool to a fixed size first (gap, "
            "adaptive_avgpool)",
        )
    if shape[0] != node.in_features:
        raise ShapeError(
            Code.SHAPE_MISMATCH,
            f"linear layer expects {node.in_features} features but receives {dim_str(shape[0])}",
        )
    return (node.out_features,)


def upsample(node: ir.Upsample, inputs: Sequence[Shape]) -> Shape:
    """Upsampling multiplies the spatial size."""
    c, h, w = _map(node, inputs[0], "upsampling")
    return (c, simplify(h * node.scale[0]), simplify(w * node.scale[1]))


def _spatial_mismatch(shapes: Sequence[Shape], what: str) -> ShapeError:
    listed = ", ".join(fmt(s) for s in shapes)
    return ShapeError(Code.SPATIAL_MISMATCH, f"{what} needs equal spatial sizes, got {listed}")


def add(node: ir.Node, inputs: Sequence[Shape]) -> Shape:
    """Element-wise sums need equal shapes: channels first, then the spatial size."""
    first = inputs[0]
    for other in inputs[1:]:
        if len(other) != len(first):
            raise ShapeError(
                Code.RANK_MISMATCH,
                f"cannot add {fmt(first)} and {fmt(other)}: different ranks",
            )
        if other[0] != first[0]:
            raise ShapeError(
                Code.CHANNEL_MISMATCH,
                f"cannot add tensors with {dim_str(first[0])} and {dim_str(other[0])} channels "
                f"({fmt(first)} and {fmt(other)})",
            )
        if other != first:
            raise _spatial_mismatch([first, other], "an element-wise sum")
    return first


def mul(node: ir.Node, inputs: Sequence[Shape]) -> Shape:
    """Element-wise products broadcast a C x 1 x 1 operand (channel scaling)."""
    full = max(inputs, key=lambda s: 0 if s[1:] == (1, 1) else 1)
    for other in inputs:
        if len(other) != len(full):
            raise ShapeError(Code.RANK_MISMATCH, f"cannot multiply {fmt(full)} and {fmt(other)}")
        if other[0] != full[0]:
            raise ShapeError(
                Code.CHANNEL_MISMATCH,
                f"cannot multiply tensors with {dim_str(full[0])} and {dim_str(other[0])} channels",
            )
        if other != full and other[1:] != (1, 1):
            raise _spatial_mismatch([full, other], "an element-wise product")
    return full


def concat(node: ir.Concat, inputs: Sequence[Shape]) -> Shape:
    """Concatenation along channels needs equal spatial sizes."""
    first = inputs[0]
    for other in inputs[1:]:
        if len(other) != len(first):
            raise ShapeError(
                Code.RANK_MISMATCH, f"cannot concatenate {fmt(first)} and {fmt(other)}"
            )
        if other[1:] != first[1:]:
            raise _spatial_mismatch(inputs, "concatenation")
    channels: Dim = 0
    for shape in inputs:
        channels = simplify(channels + shape[0])
    return (channels, *first[1:])


def box_head(node: ir.BoxHead, inputs: Sequence[Shape]) -> Shape:
    """A box head reads N x 4k features: four numbers per box."""
    shape = inputs[0]
    wanted = 4 * node.boxes
    if len(shape) != 1 or shape[0] != wanted:
        raise ShapeError(
            Code.HEAD_MISMATCH,
            f"a box head for {node.boxes} box{'es' if node.boxes > 1 else ''} "
            f"({node.format}) needs N x {wanted} features, but receives {fmt(shape)}",
            "end the head with 'linear 4' (4 numbers per box)",
        )
    return shape


def detect_head(node: ir.DetectHead, inputs: Sequence[Shape]) -> Shape:
    """A YOLO head needs anchors x (5 + classes) channels and a grid of input size / stride."""
    c, h, w = _map(node, inputs[0], "a detection head")
    anchors = len(node.anchors)
    wanted = anchors * (5 + node.classes)
    if c != wanted:
        raise ShapeError(
            Code.HEAD_MISMATCH,
            f"a detection head with {anchors} anchors and {node.classes} classes needs "
            f"{anchors} x (5 + {node.classes}) = {wanted} channels, but receives {c}",
            f"make the last convolution 'conv {wanted} 1x1'",
        )
    if node.image_size is not None:
        for size, grid, axis in zip(node.image_size, (h, w), ("height", "width"), strict=True):
            expected = floordiv(size, node.stride)
            if isinstance(size, int) and (size % node.stride or grid != expected):
                raise ShapeError(
                    Code.STRIDE_MISMATCH,
                    f"stride {node.stride} does not match the grid: input {axis} {size} / "
                    f"{node.stride} = {size / node.stride:g}, but the grid is {dim_str(grid)}",
                    f"the map's real stride is {size / grid:g}" if isinstance(grid, int) else "",
                )
            if not isinstance(size, int) and simplify(expected) != grid:
                raise ShapeError(
                    Code.STRIDE_MISMATCH,
                    f"stride {node.stride} does not match the grid {dim_str(grid)} for an input "
                    f"{axis} of {dim_str(size)}",
                )
    return inputs[0]


def input_(node: ir.Input, inputs: Sequence[Shape]) -> Shape:
    """An input has its declared shape."""
    return tuple(node.declared)


RULES: dict[str, Callable[..., Shape]] = {
    "input": input_,
    "conv": conv,
    "conv_transpose": conv_transpose,
    "batchnorm": batchnorm,
    "activation": same,
    "softmax": same,
    "dropout": same,
    "identity": same,
    "lrn": lrn,
    "pool": pool,
    "global_pool": global_pool,
    "adaptive_pool": adaptive_pool,
    "channel_pool": channel_pool,
    "flatten": flatten,
    "linear": linear,
    "upsample": upsample,
    "add": add,
    "mul": mul,
    "concat": concat,
    "box_head": box_head,
    "detect_head": detect_head,
}


def infer(node: ir.Node, inputs: Sequence[Shape]) -> Shape:
    """The output shape of one node, given its input shapes; raises ShapeError."""
    return RULES[node.kind](node, inputs)  # type: ignore[attr-defined]
