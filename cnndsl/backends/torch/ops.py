"""What each IR kind becomes in PyTorch: one table shared by the live runtime and the emitter.

``MODULES`` maps a kind to a factory (registered with ``@module("kind")``) that describes the
``nn.Module`` constructor call as data (a :class:`Call`); the runtime evaluates the call and
the emitter prints it, so both build the same layers by construction. ``FUNCTIONS`` lists the
kinds that have no module (``add``, ``mul``, ``concat``, ``flatten``); they are plain tensor
operations in ``forward``. This module does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnndsl import ir
from cnndsl.ops.norm import GroupNorm

REQUIRED = object()  # the default of a keyword argument that is always written
# cnndsl's own modules (backends/torch/modules.py) that some calls name; the emitter copies
# their source into the file it writes.
HELPER_CLASSES = frozenset({"PaddedConv2d", "ChannelMaxPool"})


@dataclass(frozen=True)
class Call:
    """A constructor call as data: ``func(*args, name=value, ...)``.

    ``kwargs`` holds (name, value, default) triples; a keyword whose value equals its default is
    left out of the printed source (PyTorch fills it in), ``REQUIRED`` marks one always written.
    """

    func: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any, Any], ...] = field(default_factory=tuple)

    def shown_kwargs(self) -> list[tuple[str, Any]]:
        """The keywords that differ from their defaults, in order."""
        return [(k, v) for k, v, d in self.kwargs if d is REQUIRED or v != d]


@dataclass(frozen=True)
class Context:
    """Facts about the whole network that a factory may need (who reads a tensor)."""

    nodes: dict[str, ir.Node]
    consumers: dict[str, list[str]]
    outputs: frozenset[str]

    @classmethod
    def of(cls, network: ir.Network) -> Context:
        """The context of one network."""
        return cls(
            dict(network.by_name()), network.consumers(), frozenset(network.outputs.values())
        )

    def can_overwrite(self, node: ir.Node) -> bool:
        """Whether an activation may run in place on its input (as torchvision's ReLU does).

        Only when nothing else reads the input, the input is not a network output, and its
        producer does not need its own output for the backward pass.
        """
        if len(node.inputs) != 1:
            return False
        source = node.inputs[0]
        producer = self.nodes.get(source)
        return (
            producer is not None
            and producer.autograd().overwritable
            and len(self.consumers.get(source, [])) == 1
            and source not in self.outputs
        )


Factory = Callable[[Any, Context], Call]
MODULES: dict[str, Factory] = {}
# The module classes a kind's factory may build, for code that tests ``isinstance`` (the
# emitted init loop); required for kinds that have state.
CLASSES: dict[str, tuple[str, ...]] = {}


def module(*kinds: str, classes: tuple[str, ...] = ()) -> Callable[[Factory], Factory]:
    """Register the factory of the module that computes each of ``kinds``."""

    def register(factory: Factory) -> Factory:
        for kind in kinds:
            MODULES[kind] = factory
            if classes:
                CLASSES[kind] = classes
        return factory

    return register


def compact(value: tuple[int, ...] | tuple[float, ...]) -> Any:
    """``(3, 3)`` -> ``3``: PyTorch takes one number for a square size."""
    return value[0] if len(set(value)) == 1 else tuple(value)


@module("conv", classes=("nn.Conv2d",))
def _conv(node: ir.Conv, context: Context) -> Call:
    top, left, bottom, right = node.padding
    symmetric = top == bottom and left == right
    padding: Any = compact((top, left)) if symmetric else (top, left, bottom, right)
    return Call(
        "nn.Conv2d" if symmetric else "PaddedConv2d",
        (node.in_channels, node.out_channels),
        (
            ("kernel_size", compact(node.kernel), REQUIRED),
            ("stride", compact(node.stride), 1),
            ("padding", padding, 0),
            ("dilation", compact(node.dilation), 1),
            ("groups", node.groups, 1),
            ("bias", node.bias, True),
        ),
    )


@module("conv_transpose", classes=("nn.ConvTranspose2d",))
def _conv_transpose(node: ir.ConvTranspose, context: Context) -> Call:
    return Call(
        "nn.ConvTranspose2d",
        (node.in_channels, node.out_channels),
        (
            ("kernel_size", compact(node.kernel), REQUIRED),
            ("stride", compact(node.stride), 1),
            ("padding", compact(node.padding), 0),
            ("output_padding", compact(node.output_padding), 0),
            ("groups", node.groups, 1),
            ("bias", node.bias, True),
            ("dilation", compact(node.dilation), 1),
        ),
    )


@module("batchnorm", classes=("nn.BatchNorm1d", "nn.BatchNorm2d"))
def _batchnorm(node: ir.BatchNorm, context: Context) -> Call:
    flat = node.shape is not None and len(node.shape) == 1
    return Call(
        "nn.BatchNorm1d" if flat else "nn.BatchNorm2d",
        (node.channels,),
        (("eps", node.eps, 1e-5), ("momentum", node.momentum, 0.1)),
    )


_ACTIVATIONS = {
    "relu": "nn.ReLU", "relu6": "nn.ReLU6", "leaky_relu": "nn.LeakyReLU", "sigmoid": "nn.Sigmoid",
    "tanh": "nn.Tanh", "silu": "nn.SiLU", "hardswish": "nn.Hardswish",
    "hardsigmoid": "nn.Hardsigmoid", "gelu": "nn.GELU",
}


@module("activation")
def _activation(node: ir.Activation, context: Context) -> Call:
    func = _ACTIVATIONS[node.function]
    if node.function == "leaky_relu":
        inplace = context.can_overwrite(node) and node.negative_slope >= 0
        return Call(func, (node.negative_slope,), (("inplace", inplace, False),))
    if node.function in ("relu", "relu6"):
        return Call(func, (), (("inplace", context.can_overwrite(node), False),))
    return Call(func)


@module("pool")
def _pool(node: ir.Pool, context: Context) -> Call:
    kwargs: tuple[tuple[str, Any, Any], ...] = (
        ("stride", compact(node.stride), REQUIRED),
        ("padding", compact(node.padding), 0),
        ("ceil_mode", node.ceil_mode, False),
    )
    if node.mode == "avg":
        kwargs += (("count_include_pad", node.count_include_pad, True),)
    func = "nn.MaxPool2d" if node.mode == "max" else "nn.AvgPool2d"
    return Call(func, (compact(node.kernel),), kwargs)


@module("global_pool")
def _global_pool(node: ir.GlobalPool, context: Context) -> Call:
    func = "nn.AdaptiveAvgPool2d" if node.mode == "avg" else "nn.AdaptiveMaxPool2d"
    return Call(func, (1,))


@module("adaptive_pool")
def _adaptive_pool(node: ir.AdaptivePool, context: Context) -> Call:
    func = "nn.AdaptiveAvgPool2d" if node.mode == "avg" else "nn.AdaptiveMaxPool2d"
    return Call(func, (compact(node.output_size),))


@module("channel_pool")
def _channel_pool(node: ir.ChannelPool, context: Context) -> Call:
    return Call("ChannelMaxPool", (node.kernel,))


@module("lrn")
def _lrn(node: ir.LRN, context: Context) -> Call:
    return Call(
        "nn.LocalResponseNorm",
        (node.size,),
        (("alpha", node.alpha, 1e-4), ("beta", node.beta, 0.75), ("k", node.k, 1.0)),
    )


@module("upsample")
def _upsample(node: ir.Upsample, context: Context) -> Call:
    kwargs: tuple[tuple[str, Any, Any], ...] = (
        ("scale_factor", compact(node.scale), REQUIRED),
        ("mode", node.mode, "nearest"),
    )
    if node.mode == "bilinear":
        kwargs += (("align_corners", False, REQUIRED),)
    return Call("nn.Upsample", (), kwargs)


@module("groupnorm", classes=("nn.GroupNorm",))
def _groupnorm(node: GroupNorm, context: Context) -> Call:
    return Call("nn.GroupNorm", (node.groups, node.channels), (("eps", node.eps, 1e-5),))


@module("softmax")
def _softmax(node: ir.Softmax, context: Context) -> Call:
    return Call("nn.Softmax", (), (("dim", node.axis, REQUIRED),))


@module("dropout")
def _dropout(node: ir.Dropout, context: Context) -> Call:
    return Call("nn.Dropout", (), (("p", node.p, 0.5),))


@module("linear", classes=("nn.Linear",))
def _linear(node: ir.Linear, context: Context) -> Call:
    return Call("nn.Linear", (node.in_features, node.out_features), (("bias", node.bias, True),))


@module("identity", "box_head", "detect_head")
def _identity(node: ir.Node, context: Context) -> Call:
    return Call("nn.Identity")


# Kinds computed by a tensor operation in forward rather than by a module.
FUNCTIONS = frozenset({"input", "add", "mul", "concat", "flatten"})


def module_call(node: ir.Node, context: Context) -> Call:
    """The constructor call of the module that computes ``node``."""
    kind = node.kind
    factory = MODULES.get(kind)
    if factory is None:
        raise NotImplementedError(f"the PyTorch backend has no module for IR kind {kind!r}")
    return factory(node, context)
