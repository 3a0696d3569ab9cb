"""Shape inference: each node kind's rule lives on its definition (``Node.infer``).

Shapes exclude the batch dimension, which is always symbolic: ``(C, H, W)`` for feature maps,
``(F,)`` for feature vectors. Sizes may be symbolic polynomials (see ``symbolic.py``). A rule
raises ``ShapeError`` with the code of what went wrong; the elaborator turns that into a
positioned diagnostic at the layer that caused it.
"""

from __future__ import annotations

from collections.abc import Sequence

from cnndsl import ir
from cnndsl.ops.base import Shape, ShapeError, shape_str


def fmt(shape: Shape) -> str:
    """``N x 64 x 56 x 56``."""
    return shape_str(shape)


def infer(node: ir.Node, inputs: Sequence[Shape]) -> Shape:
    """The output shape of one node, given its input shapes; raises ShapeError."""
    return node.infer(inputs)


__all__ = ["Shape", "ShapeError", "fmt", "infer"]
