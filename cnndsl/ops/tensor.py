"""Tensor plumbing: graph inputs, ``add``/``mul``/``concat``, ``flatten``, ``identity``,
``dropout`` and ``upsample``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cnndsl.diagnostics import Code
from cnndsl.ops.base import (
    Autograd,
    Node,
    Pair,
    Shape,
    ShapeError,
    feature_map,
    is_view,
    keeps_shape,
    no_macs,
    number_text,
    saves_nothing,
    shape_str,
    stateless,
    tuple_text,
)
from cnndsl.ops.words import Layer, Param, choice, probability, simple
from cnndsl.ops.words import scale as scale_factor
from cnndsl.symbolic import Dim, dim_str, simplify


@dataclass(kw_only=True)
class Input(Node):
    """A graph input: ``input image: 3 x 224 x 224``."""

    kind: Literal["input"] = "input"
    declared: Shape

    example = "input x: 3 x 4 x 5\nconv 2 1x1"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Its declared shape."""
        return tuple(self.declared)

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """The declared sizes: ``3 x 224 x 224``."""
        return " x ".join(dim_str(d) for d in self.declared)

    autograd = saves_nothing


def _spatial_mismatch(shapes: Sequence[Shape], what: str) -> ShapeError:
    listed = ", ".join(shape_str(s) for s in shapes)
    return ShapeError(Code.SPATIAL_MISMATCH, f"{what} needs equal spatial sizes, got {listed}")


def _call_text(node: Node) -> str:
    # the word alone: the printer writes the sources, by their labels, in parentheses
    return str(node.tensor_word)


@dataclass(kw_only=True)
class Add(Node):
    """Element-wise sum of two or more tensors of one shape."""

    kind: Literal["add"] = "add"

    tensor_word = "add"
    example = ("input x: 3 x 4 x 5\na: conv 3 1x1\nb: x -> conv 3 3x3 pad 1\nc: x -> relu\n"
               "add(a, b, c)")

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Equal shapes: channels first, then the spatial size."""
        first = inputs[0]
        for other in inputs[1:]:
            if len(other) != len(first):
                raise ShapeError(
                    Code.RANK_MISMATCH,
                    f"cannot add {shape_str(first)} and {shape_str(other)}: different ranks",
                )
            if other[0] != first[0]:
                raise ShapeError(
                    Code.CHANNEL_MISMATCH,
                    f"cannot add tensors with {dim_str(first[0])} and {dim_str(other[0])} "
                    f"channels ({shape_str(first)} and {shape_str(other)})",
                )
            if other != first:
                raise _spatial_mismatch([first, other], "an element-wise sum")
        return first

    state = stateless
    macs = no_macs
    text = _call_text

    def autograd(self) -> Autograd:
        """Saves nothing; every input's gradient is the output's; may be overwritten."""
        return Autograd(overwritable=True, grad_view=True)


@dataclass(kw_only=True)
class Mul(Node):
    """Element-wise product; a N x C x 1 x 1 operand is broadcast (channel scaling)."""

    kind: Literal["mul"] = "mul"

    tensor_word = "mul"
    example = "input x: 4 x 5 x 6\ny: conv 4 1x1\ngate: gap -> sigmoid\nmul(y, gate)"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """A C x 1 x 1 operand is broadcast (channel scaling)."""
        full = max(inputs, key=lambda s: 0 if s[1:] == (1, 1) else 1)
        for other in inputs:
            if len(other) != len(full):
                raise ShapeError(Code.RANK_MISMATCH,
                                 f"cannot multiply {shape_str(full)} and {shape_str(other)}")
            if other[0] != full[0]:
                raise ShapeError(
                    Code.CHANNEL_MISMATCH,
                    f"cannot multiply tensors with {dim_str(full[0])} and {dim_str(other[0])} "
                    "channels",
                )
            if other != full and other[1:] != (1, 1):
                raise _spatial_mismatch([full, other], "an element-wise product")
        return full

    state = stateless
    macs = no_macs
    text = _call_text

    def autograd(self) -> Autograd:
        """Saves both operands (x and the gate of squeeze-and-excitation)."""
        return Autograd(("inputs",))


@dataclass(kw_only=True)
class Concat(Node):
    """Concatenation along channels."""

    kind: Literal["concat"] = "concat"
    axis: int = 1

    tensor_word = "concat"
    example = "input x: 3 x 4 x 5\na: conv 2 1x1\nb: x -> conv 5 1x1\nconcat(a, b, x)"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Equal spatial sizes; the channels add up."""
        first = inputs[0]
        for other in inputs[1:]:
            if len(other) != len(first):
                raise ShapeError(
                    Code.RANK_MISMATCH,
                    f"cannot concatenate {shape_str(first)} and {shape_str(other)}",
                )
            if other[1:] != first[1:]:
                raise _spatial_mismatch(inputs, "concatenation")
        channels: Dim = 0
        for shape in inputs:
            channels = simplify(channels + shape[0])
        return (channels, *first[1:])

    state = stateless
    macs = no_macs
    text = _call_text

    def autograd(self) -> Autograd:
        """Saves nothing; each input's gradient is a slice of the output's."""
        return Autograd(grad_view=True)


@dataclass(kw_only=True)
class Dropout(Node):
    """Dropout; the identity at inference."""

    kind: Literal["dropout"] = "dropout"
    p: float = 0.5

    words = (
        Layer("dropout", "dropout (identity at inference)", simple("dropout"), ("p",),
              {"p": Param(probability, 0.5)}),
    )
    example = "input x: 3 x 4 x 5\nconv 4 1x1 -> dropout 0.3"

    infer = keeps_shape
    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``dropout 0.5``."""
        return f"dropout {number_text(self.p)}"

    def autograd(self) -> Autograd:
        """Saves its noise (the memory rule knows its size per device)."""
        return Autograd(("noise",))


@dataclass(kw_only=True)
class Flatten(Node):
    """Flatten C x H x W into features."""

    kind: Literal["flatten"] = "flatten"

    words = (Layer("flatten", "flatten C x H x W into features", simple("flatten")),)
    example = "input x: 3 x 4 x 5\nconv 2 1x1 -> flatten"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """One feature axis."""
        total: Dim = 1
        for dim in inputs[0]:
            total = simplify(total * dim)
        return (total,)

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``flatten``."""
        return "flatten"

    autograd = is_view


@dataclass(kw_only=True)
class Upsample(Node):
    """Upsampling by an integer factor, nearest or bilinear (align_corners=False)."""

    kind: Literal["upsample"] = "upsample"
    scale: Pair
    mode: Literal["nearest", "bilinear"] = "nearest"

    words = (
        Layer("upsample", "upsampling by an integer factor", simple("upsample"),
              ("scale", "mode"), {"scale": Param(scale_factor, (2, 2)),
                                  "mode": Param(choice("nearest", "bilinear"), "nearest")},
              {"nearest": ("mode", "nearest"), "bilinear": ("mode", "bilinear")}),
    )
    example = ("input x: 3 x 4 x 5\ny: conv 3 1x1\na: upsample 2x\n"
               "b: y -> upsample (2, 3) bilinear\noutput a, b")

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Multiplies the spatial size."""
        c, h, w = feature_map(inputs[0], "upsampling")
        return (c, simplify(h * self.scale[0]), simplify(w * self.scale[1]))

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``upsample scale=(2, 2) nearest``."""
        return f"upsample scale={tuple_text(self.scale)} {self.mode}"

    autograd = saves_nothing


@dataclass(kw_only=True)
class Identity(Node):
    """The identity."""

    kind: Literal["identity"] = "identity"

    words = (Layer("identity", "the identity", simple("identity")),)
    example = "input x: 3 x 4 x 5\nconv 2 1x1 -> identity"

    infer = keeps_shape
    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``identity``."""
        return "identity"

    autograd = is_view
