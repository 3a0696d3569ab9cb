"""Multiply-accumulates (MACs) and FLOPs per node (each kind's ``Node.macs``), and totals.

Convention (the one PyTorch's ``torch.utils.flop_counter.FlopCounterMode`` uses, so that
``total_macs(network) == FlopCounterMode total / 2`` for the forward pass):

- One MAC is one multiply followed by one add; FLOPs = 2 x MACs.
- Counted, per sample (multiply by the batch for a batch):
  - ``conv``: ``out_channels * (in_channels / groups) * kh * kw * Hout * Wout``
    (dilation and padding change the output size, not the per-output cost);
  - ``conv_transpose``: ``in_channels * (out_channels / groups) * kh * kw * Hin * Win`` -- every
    *input* pixel scatters a ``kh x kw`` patch into each of ``out_channels / groups`` maps, so
    the cost follows the input size, not the (larger) output size;
  - ``linear``: ``in_features * out_features``.
- Not counted (zero, as ``FlopCounterMode`` has no formula for them): bias additions, batch norm,
  activations, softmax, pooling of any kind, LRN, dropout, upsampling, element-wise add and mul,
  concat, flatten and the head markers. These are memory-bound and cheap next to convolutions;
  counting them would make the figures disagree with PyTorch's counter and with published MACs.

Sizes must be concrete: a network with symbolic sizes (``3 x H x W``) raises ``ValueError``
until the sizes are bound (``--input 3x512x512`` or ``check(..., input="H=512,W=512")``).
"""

from __future__ import annotations

from cnndsl import ir
from cnndsl.ops.base import concrete_shape


def node_macs(node: ir.Node, network: ir.Network) -> int:
    """MACs of one node for one sample (0 for the kinds that the convention does not count)."""
    return node.macs(network)


def macs_by_node(network: ir.Network) -> dict[str, int]:
    """MACs per node for one sample, keyed by path, in topological order."""
    return {node.name: node_macs(node, network) for node in network.nodes}


def total_macs(network: ir.Network, batch: int = 1) -> int:
    """MACs of one forward pass over ``batch`` samples."""
    return batch * sum(macs_by_node(network).values())


def total_flops(network: ir.Network, batch: int = 1) -> int:
    """FLOPs of one forward pass: 2 x MACs, as ``FlopCounterMode`` counts them."""
    return 2 * total_macs(network, batch)


__all__ = ["concrete_shape", "macs_by_node", "node_macs", "total_flops", "total_macs"]
