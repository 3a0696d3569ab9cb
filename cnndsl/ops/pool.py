"""Pooling: ``maxpool``/``avgpool`` (``pool``), ``gap``/``gmp`` (``global_pool``), adaptive
pooling and max pooling across channels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cnndsl.diagnostics import Code
from cnndsl.ops.base import (
    Autograd,
    Node,
    Pair,
    Shape,
    ShapeError,
    feature_map,
    no_macs,
    pair_text,
    positive,
    stateless,
    tuple_text,
)
from cnndsl.ops.words import (
    KERNEL,
    PAD,
    REQUIRED,
    ArgumentError,
    Builder,
    Built,
    Context,
    Layer,
    Param,
    boolean,
    conv_padding,
    positive_int,
    positive_pair,
    simple,
)
from cnndsl.symbolic import ceildiv, floordiv, simplify

MAX_ADAPTIVE = 65_536  # output pixels per side of adaptive pooling


def _pool(mode: str) -> Builder:
    def build(args: dict[str, Any], context: Context) -> Built:
        kernel = args["kernel"]
        stride = args["stride"] or kernel
        pad = args["padding"]
        if pad == "valid":
            pad = (0, 0)
        elif pad == "same" or len(pad) == 4:
            four = conv_padding({**args, "stride": stride, "dilation": (1, 1)}, context)
            if four[0] != four[2] or four[1] != four[3]:
                raise ArgumentError("pooling supports only symmetric padding", code="value")
            pad = (four[0], four[1])
        fields = dict(kind="pool", mode=mode, kernel=kernel, stride=stride, padding=pad,
                      ceil_mode=args["ceil"])
        if mode == "avg":
            fields["count_include_pad"] = args["count_include_pad"]
        return [(None, fields)]

    return build


def _pool_params() -> dict[str, Param]:
    return {
        "kernel": KERNEL, "stride": Param(positive_pair, None), "padding": PAD,
        "ceil": Param(boolean, False),
    }


def _max_saves(mode: str) -> Autograd:
    # max_pool2d_with_indices keeps the input and int64 indices of the output's size
    return Autograd(("input", "indices") if mode == "max" else ("input",))


@dataclass(kw_only=True)
class Pool(Node):
    """Max or average pooling; ``padding`` is symmetric (h, w) as in PyTorch."""

    kind: Literal["pool"] = "pool"
    mode: Literal["max", "avg"]
    kernel: Pair
    stride: Pair
    padding: Pair = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True

    words = (
        Layer("maxpool", "max pooling (stride defaults to the kernel)", _pool("max"),
              ("kernel",), _pool_params(), {"ceil": ("ceil", True)}),
        Layer("avgpool", "average pooling (stride defaults to the kernel)", _pool("avg"),
              ("kernel",), {**_pool_params(), "count_include_pad": Param(boolean, True)},
              {"ceil": ("ceil", True)}),
    )
    example = ("input x: 3 x 11 x 10\nconv 3 1x1 -> maxpool 3x3 /2 pad 1 ceil\n"
               "avgpool 2x3 /(2, 1) pad (1, 1) ceil count_include_pad=false")

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Floor or ceil mode as PyTorch (a last window starting in the padding is dropped)."""
        c, h, w = feature_map(inputs[0], f"{self.mode} pooling")
        sizes = []
        for size, k, s, p, axis in zip((h, w), self.kernel, self.stride,
                                       self.padding, ("height", "width"), strict=True):
            if 2 * p > k:
                raise ShapeError(Code.BAD_VALUE,
                                 f"pooling padding {p} exceeds half the kernel {k}")
            padded = simplify(size + 2 * p)
            if isinstance(padded, int) and padded < k:
                raise ShapeError(
                    Code.KERNEL_TOO_LARGE,
                    f"pooling kernel {k} is larger than the padded input {padded} along {axis}",
                )
            if not self.ceil_mode:
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
        return positive((c, *sizes), "pooling")

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``maxpool 3x3 /(2, 2) pad (1, 1) ceil``."""
        text = (f"{self.mode}pool {pair_text(self.kernel)} /{tuple_text(self.stride)} "
                f"pad {tuple_text(self.padding)}")
        if self.ceil_mode:
            text += " ceil"
        if self.mode == "avg" and not self.count_include_pad:
            text += " count_include_pad=false"
        return text

    def autograd(self) -> Autograd:
        """Max pooling saves input and indices, average pooling its input."""
        return _max_saves(self.mode)


@dataclass(kw_only=True)
class GlobalPool(Node):
    """Global average or max pooling to N x C x 1 x 1."""

    kind: Literal["global_pool"] = "global_pool"
    mode: Literal["max", "avg"]

    words = (
        Layer("gap", "global average pooling to C x 1 x 1", simple("global_pool", mode="avg")),
        Layer("gmp", "global max pooling to C x 1 x 1", simple("global_pool", mode="max")),
    )
    example = "input x: 4 x 5 x 6\ny: conv 4 1x1\na: gap\nb: y -> gmp\nadd(a, b)"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """To C x 1 x 1."""
        c, _, _ = feature_map(inputs[0], "global pooling")
        return (c, 1, 1)

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``gap`` or ``gmp``."""
        return "gap" if self.mode == "avg" else "gmp"

    def autograd(self) -> Autograd:
        """Max saves input and indices; the average (a mean) needs only sizes."""
        return _max_saves("max") if self.mode == "max" else Autograd()


def build_adaptive(mode: str) -> Builder:
    """``adaptive_avgpool SIZE``."""

    def build(args: dict[str, Any], context: Context) -> Built:
        return [(None, {"kind": "adaptive_pool", "mode": mode, "output_size": args["size"]})]

    return build


@dataclass(kw_only=True)
class AdaptivePool(Node):
    """Adaptive pooling to a fixed output size, as PyTorch's AdaptiveAvgPool2d."""

    kind: Literal["adaptive_pool"] = "adaptive_pool"
    mode: Literal["max", "avg"]
    output_size: Pair

    words = (
        Layer("adaptive_avgpool", "adaptive average pooling to a size", build_adaptive("avg"),
              ("size",), {"size": Param(positive_pair, REQUIRED)}),
        Layer("adaptive_maxpool", "adaptive max pooling to a size", build_adaptive("max"),
              ("size",), {"size": Param(positive_pair, REQUIRED)}),
    )
    example = ("input x: 3 x 7 x 9\ny: conv 3 1x1\na: adaptive_avgpool 3x4\n"
               "b: y -> adaptive_maxpool 3x4\nadd(a, b)")

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """To the fixed size, at most MAX_ADAPTIVE per side."""
        c, _, _ = feature_map(inputs[0], "adaptive pooling")
        # Every output pixel is its own window (the ONNX lowering writes one per row and
        # column): bound the size before a backend allocates per window.
        if any(size > MAX_ADAPTIVE for size in self.output_size):
            size = "x".join(map(str, self.output_size))
            raise ShapeError(Code.LIMIT, f"adaptive pooling to {size} exceeds the "
                             f"limit of {MAX_ADAPTIVE:,} per side")
        return (c, *self.output_size)

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``adaptive_avgpool 7x7``."""
        return f"adaptive_{self.mode}pool {pair_text(self.output_size)}"

    def autograd(self) -> Autograd:
        """Max saves input and indices; the average its input (nothing at 1 x 1)."""
        if self.mode == "max":
            return _max_saves("max")
        return Autograd(() if tuple(self.output_size) == (1, 1) else ("input",))


@dataclass(kw_only=True)
class ChannelPool(Node):
    """Max pooling across channels (depthwise max pooling): C -> C / kernel."""

    kind: Literal["channel_pool"] = "channel_pool"
    kernel: int

    words = (
        Layer("channel_maxpool", "max pooling across channels (depthwise max pooling)",
              simple("channel_pool"), ("kernel",), {"kernel": Param(positive_int, REQUIRED)}),
    )
    example = "input x: 6 x 4 x 5\nconv 6 1x1 -> channel_maxpool 3"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """The kernel must divide the channel count."""
        c, h, w = feature_map(inputs[0], "channel pooling")
        if not isinstance(c, int) or c % self.kernel:
            raise ShapeError(
                Code.CHANNEL_MISMATCH,
                f"channel pooling kernel {self.kernel} does not divide {c} channels",
            )
        return (c // self.kernel, h, w)

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``channel_maxpool 2``."""
        return f"channel_maxpool {self.kernel}"

    def autograd(self) -> Autograd:
        """amax saves its input and output."""
        return Autograd(("input", "output"))
