"""The graph being built: the ONNX nodes emitted so far and the helpers lowerings share.

Node names are the spec's paths (a lowering that needs several ONNX nodes names the last one by
the path and its helpers ``path/what``); tensor names are node names; weights are referred to
by their ``state_dict`` keys. Constants that are not weights (shapes, scales, clip bounds) are
``Constant`` nodes, so the initializers are exactly the learnable state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnndsl import ir
from cnndsl.backends.onnx import wire
from cnndsl.backends.onnx.opsets import REDUCE_AXES_INPUT_OPSET
from cnndsl.diagnostics import Span
from cnndsl.symbolic import dim_str


class Unsupported(Exception):
    """A node that has no lowering under the chosen options; becomes a positioned diagnostic."""

    def __init__(self, message: str, *notes: str):
        super().__init__(message)
        self.message = message
        self.notes = notes


@dataclass
class GraphBuilder:
    """The ONNX nodes of a network so far, and what its lowerings need to know."""

    network: ir.Network
    opset: int
    weights: dict[str, np.ndarray]
    folded: dict[str, str]
    nodes: list[wire.Node] = field(default_factory=list)

    def tensor(self, name: str) -> str:
        """The ONNX tensor that holds IR tensor ``name`` (a folded batch norm is its conv)."""
        return self.folded.get(name, name)

    def inputs(self, node: ir.Node) -> list[str]:
        """The ONNX tensors that a node reads."""
        return [self.tensor(name) for name in node.inputs]

    def emit(self, op: str, inputs: list[str], output: str, name: str, span: Span | None,
             **attributes: Any) -> str:
        """Append one ONNX node (its doc string is the spec position); returns its output."""
        doc = "" if span is None else str(span)
        self.nodes.append(wire.Node(op, inputs, [output], name, attributes, doc))
        return output

    def const(self, name: str, values: Any, dtype: type = np.int64) -> str:
        """A ``Constant`` node holding ``values``; returns its output."""
        tensor = wire.Tensor(name, np.asarray(values, dtype=dtype))
        return self.emit("Constant", [], name, name, None, value=tensor)

    def weight(self, key: str) -> str | None:
        """``key`` if the network has that initializer (an optional bias), else None."""
        return key if key in self.weights else None

    def weighted_inputs(self, node: ir.Node) -> list[str]:
        """What a Conv, ConvTranspose or Gemm reads: the input, the weight, the bias if any."""
        bias = self.weight(f"{node.name}.bias")
        return [*self.inputs(node), f"{node.name}.weight", *([bias] if bias else [])]


def fixed(node: ir.Node, dims: tuple[Any, ...], what: str) -> tuple[int, ...]:
    """``dims`` as integers, or :class:`Unsupported` for a symbolic size."""
    if not all(isinstance(d, int) for d in dims):
        raise Unsupported(f"{what} needs a fixed input size in ONNX, but it is "
                          f"{' x '.join(dim_str(d) for d in dims)}",
                          "bind the sizes, e.g. --input H=224,W=224")
    return tuple(int(d) for d in dims)


def shape_of(graph: GraphBuilder, name: str) -> tuple[Any, ...]:
    """The inferred shape (without the batch) of IR tensor ``name``."""
    shape = graph.network.node(name).shape
    assert shape is not None
    return tuple(shape)


def reduce_axes(g: GraphBuilder, op: str, x: str, axes: list[int], output: str, span: Span,
                keepdims: int = 1) -> str:
    """A ``Reduce*`` node over ``axes``: an attribute before opset 18, an input from it on."""
    if g.opset >= REDUCE_AXES_INPUT_OPSET:
        return g.emit(op, [x, g.const(f"{output}/axes", axes)], output, output, span,
                      keepdims=keepdims)
    return g.emit(op, [x], output, output, span, axes=axes, keepdims=keepdims)
