"""Parameter and buffer counts, one rule per node kind."""

from __future__ import annotations

from collections.abc import Callable

from cnndsl import ir


def _conv(node: ir.Conv) -> int:
    kh, kw = node.kernel
    weight = node.out_channels * (node.in_channels // node.groups) * kh * kw
    return weight + (node.out_channels if node.bias else 0)


def _conv_transpose(node: ir.ConvTranspose) -> int:
    kh, kw = node.kernel
    weight = node.in_channels * (node.out_channels // node.groups) * kh * kw
    return weight + (node.out_channels if node.bias else 0)


def _batchnorm(node: ir.BatchNorm) -> int:
    return 2 * node.channels  # scale and shift


def _linear(node: ir.Linear) -> int:
    return node.in_features * node.out_features + (node.out_features if node.bias else 0)


PARAM_RULES: dict[str, Callable[..., int]] = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "batchnorm": _batchnorm,
    "linear": _linear,
}


def parameters(node: ir.Node) -> int:
    """Learnable parameters of one node."""
    rule = PARAM_RULES.get(node.kind)  # type: ignore[attr-defined]
    return rule(node) if rule else 0


def buffers(node: ir.Node) -> int:
    """Non-learnable state of one node: batch norm's running mean and variance."""
    return 2 * node.channels if isinstance(node, ir.BatchNorm) else 0


def annotate(network: ir.Network) -> None:
    """Store each node's parameter count on it."""
    for node in network.nodes:
        node.params = parameters(node)


def total_buffers(network: ir.Network) -> int:
    """Running statistics over the whole network, in elements."""
    return sum(buffers(node) for node in network.nodes)
