"""The op registry: one definition per IR kind, grouped by family.

``KINDS`` lists the node classes in a fixed order (the IR's tagged union, the JSON Schema and
the language's word list follow it); ``REGISTRY`` maps each kind to its class. Adding a kind
means one class in a family module and one entry here, plus a PyTorch module factory and an
ONNX lowering registered beside their backends' helpers; ``cnndsl.ops.registry.missing``
names any fact or handler that is left out.
"""

from __future__ import annotations

from cnndsl.ops.activation import Activation, ActivationName, Softmax
from cnndsl.ops.base import Autograd, Node, Shape, ShapeError, State
from cnndsl.ops.conv import Conv, ConvTranspose
from cnndsl.ops.heads import BoxHead, DetectHead
from cnndsl.ops.linear import Linear
from cnndsl.ops.norm import LRN, BatchNorm, GroupNorm
from cnndsl.ops.pool import AdaptivePool, ChannelPool, GlobalPool, Pool
from cnndsl.ops.tensor import Add, Concat, Dropout, Flatten, Identity, Input, Mul, Upsample

KINDS: tuple[type[Node], ...] = (
    Input, Conv, ConvTranspose, BatchNorm, Activation, Softmax, Pool, GlobalPool, AdaptivePool,
    ChannelPool, LRN, Dropout, Flatten, Linear, Upsample, Identity, Add, Mul, Concat, BoxHead,
    DetectHead, GroupNorm,
)

REGISTRY: dict[str, type[Node]] = {cls.kind: cls for cls in KINDS}

__all__ = [
    "KINDS",
    "LRN",
    "REGISTRY",
    "Activation",
    "ActivationName",
    "AdaptivePool",
    "Add",
    "Autograd",
    "BatchNorm",
    "BoxHead",
    "ChannelPool",
    "Concat",
    "Conv",
    "ConvTranspose",
    "DetectHead",
    "Dropout",
    "Flatten",
    "GlobalPool",
    "Identity",
    "Input",
    "Linear",
    "Mul",
    "Node",
    "Pool",
    "Shape",
    "ShapeError",
    "Softmax",
    "State",
    "Upsample",
]
