"""Normalisation: ``bn`` (kind ``batchnorm``), ``lrn`` and ``groupnorm``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cnndsl.diagnostics import Code
from cnndsl.ops.base import (
    Autograd,
    Node,
    Shape,
    ShapeError,
    State,
    check_channels,
    feature_map,
    no_macs,
    number_text,
    saves_input,
    stateless,
)
from cnndsl.ops.words import (
    REQUIRED,
    Built,
    Context,
    Layer,
    Param,
    channels_of,
    number,
    positive_int,
    positive_number,
    simple,
)


def build_batchnorm(args: dict[str, Any], context: Context) -> Built:
    """``bn [eps=E] [momentum=M]``."""
    return [(None, {"kind": "batchnorm", "channels": channels_of(context), "eps": args["eps"],
                    "momentum": args["momentum"]})]


@dataclass(kw_only=True)
class BatchNorm(Node):
    """Batch normalisation over channels (2-D maps or feature vectors)."""

    kind: Literal["batchnorm"] = "batchnorm"
    channels: int
    eps: float = 1e-5
    momentum: float = 0.1

    words = (
        Layer("bn", "batch normalisation", build_batchnorm, (),
              {"eps": Param(positive_number, 1e-5), "momentum": Param(number, 0.1)}),
    )
    example = "input x: 5 x 6 x 7\nbn eps=0.001 momentum=0.2"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Keeps the shape; its channel count must match."""
        shape = inputs[0]
        check_channels(shape[0], self.channels, "batch norm")
        return shape

    def state(self) -> list[State]:
        """Scale 1 and shift 0; running mean 0, variance 1 and a step counter as buffers."""
        channels = (self.channels,)
        return [State("weight", channels, "ones"), State("bias", channels, "zeros"),
                State("running_mean", channels, "zeros", buffer=True),
                State("running_var", channels, "ones", buffer=True),
                State("num_batches_tracked", (), "zeros", buffer=True, dtype="int64")]

    macs = no_macs

    def text(self) -> str:
        """``bn eps=1e-05 momentum=0.1``."""
        return f"bn eps={number_text(self.eps)} momentum={number_text(self.momentum)}"

    def autograd(self) -> Autograd:
        """Saves its input, batch mean and inverse std; its output may be overwritten."""
        return Autograd(("input",), overwritable=True)


@dataclass(kw_only=True)
class LRN(Node):
    """Local response normalisation across channels (AlexNet)."""

    kind: Literal["lrn"] = "lrn"
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0

    words = (
        Layer("lrn", "local response normalisation across channels", simple("lrn"), ("size",),
              {"size": Param(positive_int, 5), "alpha": Param(number, 1e-4),
               "beta": Param(number, 0.75), "k": Param(number, 1.0)}),
    )
    example = "input x: 7 x 5 x 5\nconv 7 1x1 -> lrn 4 alpha=0.001 beta=0.7 k=2"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Keeps a feature map's shape; its window is at most 2C - 1 channels wide."""
        c, _, _ = feature_map(inputs[0], "local response normalisation")
        # From any channel a window of 2C - 1 covers every channel; torch pads the input by the
        # window, so a wider one only allocates (lrn 2^62 asked for exabytes).
        if isinstance(c, int) and self.size > 2 * c - 1:
            raise ShapeError(Code.BAD_VALUE, f"lrn size {self.size} is wider than 2 x {c} - 1 = "
                             f"{2 * c - 1}, the widest window {c} channels can use")
        return inputs[0]

    state = stateless
    macs = no_macs

    def text(self) -> str:
        """``lrn 5 alpha=0.0001 beta=0.75 k=2``."""
        return (f"lrn {self.size} alpha={number_text(self.alpha)} "
                f"beta={number_text(self.beta)} k={number_text(self.k)}")

    autograd = saves_input


def build_groupnorm(args: dict[str, Any], context: Context) -> Built:
    """``groupnorm GROUPS [eps=E]``."""
    return [(None, {"kind": "groupnorm", "groups": args["groups"],
                    "channels": channels_of(context), "eps": args["eps"]})]


@dataclass(kw_only=True)
class GroupNorm(Node):
    """Group normalisation: channels in ``groups`` groups, each normalised over its channels
    and positions, then a learned scale and shift per channel (PyTorch's nn.GroupNorm)."""

    kind: Literal["groupnorm"] = "groupnorm"
    groups: int
    channels: int
    eps: float = 1e-5

    words = (
        Layer("groupnorm", "group normalisation", build_groupnorm, ("groups",),
              {"groups": Param(positive_int, REQUIRED), "eps": Param(number, 1e-5)}),
    )
    example = "input x: 6 x 5 x 4\nconv 6 3x3 pad 1 -> groupnorm 3 eps=0.001 -> relu"

    def infer(self, inputs: Sequence[Shape]) -> Shape:
        """Keeps the shape; the groups must divide the channels."""
        shape = inputs[0]
        check_channels(shape[0], self.channels, "group norm")
        if self.channels % self.groups:
            raise ShapeError(Code.CHANNEL_MISMATCH,
                             f"group norm: {self.groups} groups do not divide "
                             f"{self.channels} channels")
        return shape

    def state(self) -> list[State]:
        """Scale 1 and shift 0 per channel; no running statistics."""
        channels = (self.channels,)
        return [State("weight", channels, "ones"), State("bias", channels, "zeros")]

    macs = no_macs

    def text(self) -> str:
        """``groupnorm 32 eps=1e-05``."""
        return f"groupnorm {self.groups} eps={number_text(self.eps)}"

    def autograd(self) -> Autograd:
        """Saves its input and each group's mean and inverse std; output overwritable."""
        return Autograd(("input",), overwritable=True, statistics=self.groups)
