"""The fully connected layer: ``linear``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cnndsl.diagnostics import Code
from cnndsl.ops.base import Autograd, Node, Shape, ShapeError, State, bias_text, shape_str
from cnndsl.ops.words import BIAS, REQUIRED, Built, Context, Layer, Param, positive_int
from cnndsl.symbolic import dim_str

if TYPE_CHECKING:
    from cnndsl.ir import Network


def build_linear(args: dict[str, Any], context: Context) -> Built:
    """``linear UNITS [bias=B]``."""
    shape = context.input_shape
    features = shape[0] if len(shape) == 1 else None
    if not isinstance(features, int):
        # The shape rule reports the real problem (an unflattened or symbolic input).
        features = 0
    bias = True if args["bias"] is None else args["bias"]
    return [(None, {"kind": "linear", "in_features": features, "out_features": args["units"],
                    "bias": bias})]


@dataclass(kw_only=True)
class Linear(Node):
    """A fully connected layer."""

    kind: Literal["linear"] = "linear"
    in_features: int
    out_features: int
    bias: bool = True

    optional_state = ("bias",)
    words = (
        Layer("linear", "fully connected layer", build_linear, ("units",),
              {"units": Param(positive_int, REQUIRED), "bias": BIAS}),
    )
    example = "input v: 12\na: linear 7\nb: v -> linear 7 bias=false\nadd(a, b)"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Needs a flat input of in_features."""
        shape = inputs[0]
        if len(shape) != 1:
            raise ShapeError(
                Code.RANK_MISMATCH,
                f"linear layer needs a flat input N x F, but its input is {shape_str(shape)}",
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
        if shape[0] != self.in_features:
            raise ShapeError(
                Code.SHAPE_MISMATCH,
                f"linear layer expects {self.in_features} features but receives "
                f"{dim_str(shape[0])}",
            )
        return (self.out_features,)

    def state(self) -> list[State]:
        """Weight (out, in) and bias: PyTorch's default, uniform with bound 1 / sqrt(in)."""
        fan = self.in_features
        weight = State("weight", (self.out_features, self.in_features), "kaiming_uniform",
                       fan=fan)
        bias = [State("bias", (self.out_features,), "uniform", fan=fan, optional=True)]
        return [weight, *(bias if self.bias else [])]

    def macs(self, network: Network) -> int:
        """in_features * out_features."""
        return self.in_features * self.out_features

    def text(self) -> str:
        """``linear 1000 bias=true``."""
        return f"linear {self.out_features} {bias_text(self.bias)}"

    def autograd(self) -> Autograd:
        """Saves its input (and weight); its output may be overwritten."""
        return Autograd(("input",), overwritable=True)
