"""The IR under construction: nodes in order, each given its shape as it is added."""

from __future__ import annotations

from typing import Any

from cnndsl import ir, shapes
from cnndsl.diagnostics import Code, Reporter
from cnndsl.frontend.expressions import MAX_INT
from cnndsl.frontend.failures import Fail, Limit, fail
from cnndsl.frontend.naming import Names
from cnndsl.symbolic import Dim

MAX_NODES = 250_000

Shape = tuple[Dim, ...]


class Graph:
    """The nodes of one network so far and their inferred shapes (None where unknown)."""

    def __init__(self, reporter: Reporter, names: Names):
        self.reporter = reporter
        self.names = names
        self.nodes: list[ir.AnyNode] = []
        self.shapes: dict[str, Shape | None] = {}
        self.image: tuple[Dim, Dim] | None = None  # the first feature-map input's H x W

    def add(self, node: Any, inputs: list[str]) -> str:
        """Infer the node's shape from its inputs', append it; returns its name."""
        if len(self.nodes) >= MAX_NODES:
            self.reporter.error(Code.LIMIT, node.span,
                                f"the network has more than {MAX_NODES} layers")
            raise Limit()
        conflict = self.names.nesting_conflict(node.name)
        if conflict is not None:
            raise fail(self.reporter, Code.DUPLICATE_NAME, node.span, conflict,
                       "choose another label")
        in_shapes = [self.shapes.get(name) for name in inputs]
        shape: Shape | None = None
        if all(s is not None for s in in_shapes):
            try:
                shape = shapes.infer(node, in_shapes)  # type: ignore[arg-type]
            except shapes.ShapeError as error:
                self.reporter.error(error.code, node.span, error.message, *error.notes)
                raise Fail() from None
            if any(isinstance(d, int) and d > MAX_INT for d in shape):
                raise fail(self.reporter, Code.LIMIT, node.span,
                           f"integer overflow: the output {shapes.fmt(shape)} is too large")
        node.shape = shape
        self.nodes.append(node)
        self.shapes[node.name] = shape
        self.names.taken.add(node.name)
        return node.name
