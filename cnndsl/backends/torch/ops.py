"""What each IR kind becomes in PyTorch: one table shared by the live runtime and the emitter.

``MODULES`` maps a kind to a factory that describes the ``nn.Module`` constructor call as data
(a :class:`Call`); the runtime evaluates the call and the emitter prints it, so both build the
same layers by construction. ``FUNCTIONS`` lists the kinds that have no module (``add``, ``mul``,
``concat``, ``flatten``); they are plain tensor operations in ``forward``. This module does not
import torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnndsl import ir

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
            and producer.kind in _OVERWRITABLE  # type: ignore[attr-defined]
            and len(self.consumers.get(source, [])) == 1
            and source not in self.outputs
        )


# Producers whose backward does not read their output, so it can be overwritten in place.
_OVERWRITABLE = frozenset({"conv", "conv_transpose", "batchnorm", "linear", "add"})


def compact(value: tuple[int, ...] | tuple[float, ...]) -> Any:
    """``(3, 3)`` -> ``3``: PyTorch takes one number for a square size."""
    return value[0] if len(set(value)) == 1 else tuple(value)


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


def _activation(node: ir.Activation, context: Context) -> Call:
    func = _ACTIVATIONS[node.function]
    if node.function == "leaky_relu":
        inplace = context.can_overwrite(node) and node.negative_slope >= 0
        return Call(func, (node.negative_slope,), (("inplace", inplace, False),))
    if node.function in ("relu", "relu6"):
        return Call(func, (), (("inplace", context.can_overwrite(node), False),))
    return Call(func)


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


def _global_pool(node: ir.GlobalPool, context: Context) -> Call:
    func = "nn.AdaptiveAvgPool2d" if node.mode == "avg" else "nn.AdaptiveMaxPool2d"
    return Call(func, (1,))


def _adaptive_pool(node: ir.AdaptivePool, context: Context) -> Call:
    func = "nn.AdaptiveAvgPool2d" if node.mode == "avg" else "nn.AdaptiveMaxPool2d"
    return Call(func, (compact(node.output_size),))


def _channel_pool(node: ir.ChannelPool, context: Context) -> Call:
    return Call("ChannelMaxPool", (node.kernel,))


def _lrn(node: ir.LRN, context: Context) -> Call:
    return Call(
        "nn.LocalResponseNorm",
        (node.size,),
        (("alpha", node.alpha, 1e-4), ("beta", node.beta, 0.75), ("k", node.k, 1.0)),
    )


def _upsample(node: ir.Upsample, context: Context) -> Call:
    kwargs: tuple[tuple[str, Any, Any], ...] = (
        ("scale_factor", compact(node.scale), REQUIRED),
        ("mode", node.mode, "nearest"),
    )
    if node.mode == "bilinear":
        kwargs += (("align_corners", False, REQUIRED),)
    return Call("nn.Upsample", (), kwargs)


MODULES: dict[str, Callable[[Any, Context], Call]] = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "batchnorm": _batchnorm,
    "activation": _activation,
    "softmax": lambda node, context: Call("nn.Softmax", (), (("dim", node.axis, REQUIRED),)),
    "pool": _pool,
    "global_pool": _global_pool,
    "adaptive_pool": _adaptive_pool,
    "channel_pool": _channel_pool,
    "lrn": _lrn,
    "dropout": lambda node, context: Call("nn.Dropout", (), (("p", node.p, 0.5),)),
    "linear": lambda node, context: Call(
        "nn.Linear", (node.in_features, node.out_features), (("bias", node.bias, True),)
    ),
    "upsample": _upsample,
    "identity": lambda node, context: Call("nn.Identity"),
    "box_head": lambda node, context: Call("nn.Identity"),
    "detect_head": lambda node, context: Call("nn.Identity"),
}

# Kinds computed by a tensor operation in forward rather than by a module.
FUNCTIONS = frozenset({"input", "add", "mul", "concat", "flatten"})


def module_call(node: ir.Node, context: Context) -> Call:
    """The constructor call of the module that computes ``node``."""
    kind: str = node.kind  # type: ignore[attr-defined]
    factory = MODULES.get(kind)
    if factory is None:
        raise NotImplementedError(f"the PyTorch backend has no module for IR kind {kind!r}")
    return factory(node, context)
