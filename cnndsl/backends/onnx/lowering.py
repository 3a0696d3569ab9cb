"""Lowering: the registry of per-kind lowerings and the pass that runs them over a network.

Each IR kind registers one function with ``@lowering("kind")`` in the family module of
:mod:`cnndsl.backends.onnx.lowerings` that mirrors :mod:`cnndsl.ops`. A kind with no lowering,
or one that its lowering refuses under the chosen options, is a positioned diagnostic (E401);
every node is tried, so all of them are reported together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnndsl import ir
from cnndsl.backends.onnx.graph import GraphBuilder, Unsupported
from cnndsl.diagnostics import Code, Reporter

Lowering = Callable[[GraphBuilder, Any], None]
LOWERINGS: dict[str, Lowering] = {}


def lowering(*kinds: str) -> Callable[[Lowering], Lowering]:
    """Register the decorated function as the ONNX lowering of each of ``kinds``."""

    def register(function: Lowering) -> Lowering:
        for kind in kinds:
            if kind in LOWERINGS:
                raise ValueError(f"kind {kind!r} already has an ONNX lowering")
            LOWERINGS[kind] = function
        return function

    return register


def lower(network: ir.Network, opset: int, weights: dict[str, np.ndarray],
          folded: dict[str, str]) -> GraphBuilder:
    """Every node of the network as ONNX nodes, in order; unsupported ones raise together."""
    g = GraphBuilder(network, opset, weights, folded)
    reporter = Reporter()
    for node in network.nodes:
        function = LOWERINGS.get(node.kind)
        try:
            if function is None:
                raise Unsupported(f"the ONNX backend has no lowering for {node.kind} layers")
            function(g, node)
        except Unsupported as error:
            reporter.error(Code.UNSUPPORTED, node.span,
                           f"cannot lower {node.name} to ONNX opset {opset}: {error.message}",
                           *error.notes)
    reporter.raise_if_errors()
    return g
