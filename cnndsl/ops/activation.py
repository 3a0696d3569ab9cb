"""Element-wise activations (kind ``activation``) and ``softmax``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cnndsl.ops.base import (
    Autograd,
    Node,
    Shape,
    keeps_shape,
    no_macs,
    number_text,
    stateless,
)
from cnndsl.ops.words import Builder, Built, Context, Layer, Param, number, simple

ActivationName = Literal[
    "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "gelu"
]

# Functions whose derivative PyTorch computes from the output (the rest keep their input).
_SAVES_OUTPUT = frozenset({"relu", "sigmoid", "tanh"})
_WORDS = {"leaky_relu": "leakyrelu"}


def _activation(function: str) -> Builder:
    def build(args: dict[str, Any], context: Context) -> Built:
        fields: dict[str, Any] = {"kind": "activation", "function": function}
        if "slope" in args:
            fields["negative_slope"] = args["slope"]
        return [(None, fields)]

    return build


@dataclass(kw_only=True)
class Activation(Node):
    """An element-wise activation function."""

    kind: Literal["activation"] = "activation"
    function: ActivationName
    negative_slope: float = 0.01

    words = (
        Layer("relu", "rectified linear unit", _activation("relu")),
        Layer("relu6", "ReLU clipped at 6", _activation("relu6")),
        Layer("leakyrelu", "leaky ReLU with a negative slope", _activation("leaky_relu"),
              ("slope",), {"slope": Param(number, 0.01)}),
        Layer("sigmoid", "logistic sigmoid", _activation("sigmoid")),
        Layer("tanh", "hyperbolic tangent", _activation("tanh")),
        Layer("silu", "SiLU, also called swish", _activation("silu")),
        Layer("swish", "SiLU, also called swish", _activation("silu")),
        Layer("hardswish", "hard swish (MobileNetV3)", _activation("hardswish")),
        Layer("hardsigmoid", "hard sigmoid", _activation("hardsigmoid")),
        Layer("gelu", "Gaussian error linear unit", _activation("gelu")),
    )
    example = ("input x: 3 x 6 x 6\nconv 4 1x1 -> leakyrelu 0.2 -> relu6 -> silu -> hardswish\n"
               "-> hardsigmoid -> gelu -> sigmoid -> tanh -> relu")

    infer = keeps_shape
    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``relu``, ``leakyrelu 0.2``."""
        word = _WORDS.get(self.function, self.function)
        if self.function == "leaky_relu":
            return f"{word} {number_text(self.negative_slope)}"
        return word

    def autograd(self) -> Autograd:
        """ReLU, sigmoid and tanh save their output, the others their input."""
        return Autograd(("output",) if self.function in _SAVES_OUTPUT else ("input",))


@dataclass(kw_only=True)
class Softmax(Node):
    """Softmax over the channel (or feature) axis."""

    kind: Literal["softmax"] = "softmax"
    axis: int = 1

    words = (Layer("softmax", "softmax over channels or features", simple("softmax")),)
    example = "input v: 6\nlinear 5 -> softmax"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Keeps the shape."""
        return inputs[0]

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``softmax``."""
        return "softmax"

    def autograd(self) -> Autograd:
        """Saves its output."""
        return Autograd(("output",))
