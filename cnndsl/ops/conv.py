"""Convolutions: ``conv``, ``dwconv``, ``sepconv`` (kind ``conv``) and ``deconv``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cnndsl.diagnostics import Code
from cnndsl.ops.base import (
    Autograd,
    Node,
    Pair,
    Shape,
    ShapeError,
    State,
    bias_text,
    check_channels,
    concrete_shape,
    feature_map,
    pair_text,
    positive,
    tuple_text,
    window,
)
from cnndsl.ops.words import (
    BIAS,
    DILATION,
    KERNEL,
    PAD,
    REQUIRED,
    STRIDE,
    ArgumentError,
    Built,
    Context,
    Layer,
    Param,
    bias_of,
    channels_of,
    conv_padding,
    non_negative_pair,
    positive_int,
)
from cnndsl.symbolic import simplify

if TYPE_CHECKING:
    from cnndsl.ir import Network


def build_conv(args: dict[str, Any], context: Context) -> Built:
    """``conv FILTERS KERNEL [/stride] [pad P] [dilation=D] [groups=G] [bias=B]``."""
    fields = dict(
        in_channels=channels_of(context), out_channels=args["filters"], kernel=args["kernel"],
        stride=args["stride"], padding=conv_padding(args, context), dilation=args["dilation"],
        groups=args["groups"], bias=bias_of(args, context),
    )
    return [(None, {"kind": "conv", **fields})]


def build_depthwise(args: dict[str, Any], context: Context) -> Built:
    """``dwconv KERNEL [multiplier=M]``: one filter group per input channel."""
    channels = channels_of(context)
    fields = dict(
        in_channels=channels, out_channels=channels * args["multiplier"], kernel=args["kernel"],
        stride=args["stride"], padding=conv_padding(args, context), dilation=args["dilation"],
        groups=channels, bias=bias_of(args, context),
    )
    return [(None, {"kind": "conv", **fields})]


def build_separable(args: dict[str, Any], context: Context) -> Built:
    """``sepconv FILTERS KERNEL``: a depthwise convolution, then a 1x1 pointwise one."""
    channels = channels_of(context)
    depthwise = dict(
        in_channels=channels, out_channels=channels, kernel=args["kernel"], stride=args["stride"],
        padding=conv_padding(args, context), dilation=args["dilation"], groups=channels,
        bias=False,
    )
    pointwise = dict(
        in_channels=channels, out_channels=args["filters"], kernel=(1, 1),
        bias=bias_of(args, context),
    )
    return [("depthwise", {"kind": "conv", **depthwise}),
            ("pointwise", {"kind": "conv", **pointwise})]


def build_deconv(args: dict[str, Any], context: Context) -> Built:
    """``deconv FILTERS KERNEL [/stride] [pad P] [output_padding=O]``."""
    pad = args["padding"]
    if isinstance(pad, str) or len(pad) == 4:
        raise ArgumentError("a transposed convolution takes padding as an int or a pair",
                            code="value")
    fields = dict(
        in_channels=channels_of(context), out_channels=args["filters"], kernel=args["kernel"],
        stride=args["stride"], padding=pad, output_padding=args["output_padding"],
        dilation=args["dilation"], groups=args["groups"], bias=bias_of(args, context),
    )
    return [(None, {"kind": "conv_transpose", **fields})]


CONV_PARAMS = {
    "filters": Param(positive_int, REQUIRED), "kernel": KERNEL, "stride": STRIDE,
    "padding": PAD, "dilation": DILATION, "groups": Param(positive_int, 1), "bias": BIAS,
}


def _convolution_text(word: str, node: Conv | ConvTranspose, *extra: str) -> str:
    parts = [f"{word} {node.out_channels} {pair_text(node.kernel)}", f"/{tuple_text(node.stride)}",
             f"pad {tuple_text(node.padding)}", *extra]
    if node.dilation != (1, 1):
        parts.append(f"dilation={tuple_text(node.dilation)}")
    if node.groups != 1:
        parts.append(f"groups={node.groups}")
    parts.append(bias_text(node.bias))
    return " ".join(parts)


@dataclass(kw_only=True)
class Conv(Node):
    """2-D convolution; ``padding`` is (top, left, bottom, right), asymmetric for ``same``."""

    kind: Literal["conv"] = "conv"
    in_channels: int
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True

    optional_state = ("bias",)
    words = (
        Layer("conv", "2-D convolution", build_conv, ("filters", "kernel"), dict(CONV_PARAMS)),
        Layer("dwconv", "depthwise convolution (groups = input channels)", build_depthwise,
              ("kernel",), {**{k: v for k, v in CONV_PARAMS.items()
                               if k not in ("filters", "groups")},
                            "multiplier": Param(positive_int, 1)}),
        Layer("sepconv", "depthwise separable convolution", build_separable,
              ("filters", "kernel"),
              {k: v for k, v in CONV_PARAMS.items() if k != "groups"}),
    )
    example = "input x: 4 x 9 x 11\nconv 6 3x3 /2 pad same dilation=2 groups=2 bias=true"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Channels must match; H' = floor((H + pads - d(k-1) - 1)/s) + 1."""
        c, h, w = feature_map(inputs[0], "convolution")
        check_channels(c, self.in_channels, "convolution")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ShapeError(
                Code.CHANNEL_MISMATCH,
                f"groups={self.groups} must divide both {self.in_channels} input and "
                f"{self.out_channels} output channels",
            )
        top, left, bottom, right = self.padding
        height = window(h, self.kernel[0], self.stride[0], top, bottom, self.dilation[0],
                        "height", "convolution")
        width = window(w, self.kernel[1], self.stride[1], left, right, self.dilation[1],
                       "width", "convolution")
        return positive((self.out_channels, height, width), "convolution")

    def state(self) -> list[State]:
        """Weight (out, in / groups, kh, kw), Kaiming normal over fan_out; bias zeros."""
        kh, kw = self.kernel
        shape = (self.out_channels, self.in_channels // self.groups, kh, kw)
        weight = State("weight", shape, "kaiming_normal", fan=self.out_channels * kh * kw)
        bias = [State("bias", (self.out_channels,), "zeros", optional=True)] if self.bias else []
        return [weight, *bias]

    def macs(self, network: Network) -> int:
        """out_channels * (in_channels / groups) * kh * kw per output pixel."""
        out = concrete_shape(self.shape, self.name)
        kh, kw = self.kernel
        return math.prod(out) * (self.in_channels // self.groups) * kh * kw

    def text(self) -> str:
        """``conv 64 3x3 /(1, 1) pad (1, 1, 1, 1) bias=false``."""
        return _convolution_text("conv", self)

    def autograd(self) -> Autograd:
        """Saves its input (and weight); its output may be overwritten."""
        return Autograd(("input",), overwritable=True)


@dataclass(kw_only=True)
class ConvTranspose(Node):
    """2-D transposed convolution (learned upsampling); ``padding`` as PyTorch's (h, w)."""

    kind: Literal["conv_transpose"] = "conv_transpose"
    in_channels: int
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    output_padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True

    optional_state = ("bias",)
    words = (
        Layer("deconv", "transposed convolution", build_deconv, ("filters", "kernel"),
              {**CONV_PARAMS, "output_padding": Param(non_negative_pair, (0, 0))}),
    )
    example = "input x: 4 x 5 x 6\ndeconv 6 3x3 /2 pad 1 output_padding=1 groups=2"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """H' = (H-1)s - 2p + d(k-1) + output_padding + 1."""
        c, h, w = feature_map(inputs[0], "transposed convolution")
        check_channels(c, self.in_channels, "transposed convolution")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ShapeError(
                Code.CHANNEL_MISMATCH,
                f"groups={self.groups} must divide both {self.in_channels} input and "
                f"{self.out_channels} output channels",
            )
        sizes = []
        for size, k, s, p, op, d in zip(
            (h, w), self.kernel, self.stride, self.padding, self.output_padding, self.dilation,
            strict=True,
        ):
            # torch takes an output_padding below the stride or the dilation; onnxruntime refuses
            # one that is not below the stride (its output no longer maps back onto the input).
            if op >= s:
                raise ShapeError(
                    Code.BAD_VALUE, f"output_padding {op} must be smaller than the stride {s}",
                    "onnxruntime requires it (torch accepts one below the dilation too)",
                )
            sizes.append(simplify((size - 1) * s - 2 * p + d * (k - 1) + op + 1))
        return positive((self.out_channels, *sizes), "transposed convolution")

    def state(self) -> list[State]:
        """Weight (in, out / groups, kh, kw); torch's fan_out is weight.size(0) * kh * kw."""
        kh, kw = self.kernel
        shape = (self.in_channels, self.out_channels // self.groups, kh, kw)
        weight = State("weight", shape, "kaiming_normal", fan=self.in_channels * kh * kw)
        bias = [State("bias", (self.out_channels,), "zeros", optional=True)] if self.bias else []
        return [weight, *bias]

    def macs(self, network: Network) -> int:
        """Every input pixel scatters a kh x kw patch into out_channels / groups maps."""
        source = network.node(self.inputs[0])
        _, height, width = concrete_shape(source.shape, source.name)
        kh, kw = self.kernel
        return self.in_channels * (self.out_channels // self.groups) * kh * kw * height * width

    def text(self) -> str:
        """``deconv 64 4x4 /(2, 2) pad (1, 1) bias=true``."""
        extra = [] if self.output_padding == (0, 0) else [
            f"output_padding={tuple_text(self.output_padding)}"]
        return _convolution_text("deconv", self, *extra)

    def autograd(self) -> Autograd:
        """Saves its input (and weight); its output may be overwritten."""
        return Autograd(("input",), overwritable=True)
