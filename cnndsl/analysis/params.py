"""Parameter and buffer counts, from each kind's state (``Node.state``)."""

from __future__ import annotations

from cnndsl import ir


def parameters(node: ir.Node) -> int:
    """Learnable parameters of one node."""
    return sum(s.elements for s in node.state() if not s.buffer)


def buffers(node: ir.Node) -> int:
    """Non-learnable floating-point state of one node (batch norm's running statistics)."""
    return sum(s.elements for s in node.state() if s.buffer and s.dtype == "float32")


def annotate(network: ir.Network) -> None:
    """Store each node's parameter count on it."""
    for node in network.nodes:
        node.params = parameters(node)


def total_buffers(network: ir.Network) -> int:
    """Running statistics over the whole network, in elements."""
    return sum(buffers(node) for node in network.nodes)
