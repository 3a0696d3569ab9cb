"""The typed IR: a network is a list of nodes in topological order, one dataclass per kind.

Each node names its output tensor (``name``, the spec path such as ``layer3.2.conv1``), lists the
tensors it reads (``inputs``), keeps its source ``span`` and, once shapes are inferred, its output
``shape`` without the batch dimension (``N`` is always symbolic). The node classes are the op
definitions of :mod:`cnndsl.ops` (one per kind, with their shape rule, state and text); this
module re-exports them. Composites of the language (residual, concat, squeeze-and-excitation,
block calls) are expanded into these primitive nodes; ``instances`` records which block
definition produced which path, for backends that rebuild the block structure (the readable
PyTorch emitter does).

The IR is plain data: building it costs no validation. Its JSON form and JSON Schema are made
by :mod:`cnndsl.ir_schema` (pydantic, imported only when JSON is asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from cnndsl.diagnostics import Span
from cnndsl.ops import (
    KINDS,
    LRN,
    Activation,
    ActivationName,
    AdaptivePool,
    Add,
    BatchNorm,
    BoxHead,
    ChannelPool,
    Concat,
    Conv,
    ConvTranspose,
    DetectHead,
    Dropout,
    Flatten,
    GlobalPool,
    Identity,
    Input,
    Linear,
    Mul,
    Node,
    Pool,
    Softmax,
    Upsample,
)
from cnndsl.ops.base import Pair, ReceptiveField, Shape, shape_str
from cnndsl.symbolic import Poly

# Any node: for typing, the base class (kinds are told apart by isinstance or ``kind``, so a new
# kind needs no edit here); the JSON schema builds the tagged union of NODE_KINDS itself.
AnyNode: TypeAlias = Node

NODE_KINDS: tuple[type[Node], ...] = KINDS


@dataclass(kw_only=True)
class BlockInstance:
    """A call of a block definition: where its nodes live and with which arguments."""

    path: str
    block: str
    arguments: dict[str, Any]
    input: str
    output: str
    span: Span = field(default_factory=Span)


@dataclass(kw_only=True)
class ExpectResult:
    """The outcome of one ``expect`` line."""

    text: str
    actual: str
    ok: bool
    span: Span


@dataclass(kw_only=True)
class Network:
    """A checked network: nodes in topological order, its inputs and named outputs."""

    name: str
    file: str = "<string>"
    nodes: list[AnyNode] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    tensors: dict[str, str] = field(default_factory=dict)
    instances: list[BlockInstance] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    expects: list[ExpectResult] = field(default_factory=list)

    def node(self, name: str) -> AnyNode:
        """The node that produces tensor ``name``: a label, an output's name, a node's path or a
        block instance's path (its output)."""
        target = self.tensors.get(name) or self.outputs.get(name) or name
        for node in self.nodes:
            if node.name == target:
                return node
        for instance in self.instances:
            if instance.path == name:
                return self.node(instance.output)
        raise KeyError(name)

    @property
    def total_params(self) -> int:
        """All parameters (weights and biases; batch-norm running statistics are buffers)."""
        return sum(node.params for node in self.nodes)

    @property
    def trainable_params(self) -> int:
        """Parameters that an optimizer updates."""
        return sum(node.params for node in self.nodes if node.trainable)

    def output_shapes(self) -> dict[str, Shape | None]:
        """Each named output's shape."""
        return {name: self.node(target).shape for name, target in self.outputs.items()}

    def by_name(self) -> dict[str, AnyNode]:
        """Nodes keyed by path."""
        return {node.name: node for node in self.nodes}

    def consumers(self) -> dict[str, list[str]]:
        """For each tensor, the nodes that read it."""
        readers: dict[str, list[str]] = {node.name: [] for node in self.nodes}
        for node in self.nodes:
            for source in node.inputs:
                readers.setdefault(source, []).append(node.name)
        return readers


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the IR, as `cnndsl ir --schema` prints it."""
    from cnndsl import ir_schema

    return ir_schema.json_schema()


def to_json(network: Network, indent: int | None = None) -> str:
    """The network as JSON (the form `cnndsl ir` prints)."""
    from cnndsl import ir_schema

    return ir_schema.to_json(network, indent)


def from_json(document: str | bytes | dict[str, Any]) -> Network:
    """A network from its JSON form, validated against the schema (ValueError if invalid)."""
    from cnndsl import ir_schema

    return ir_schema.from_json(document)


__all__ = [
    "LRN", "Activation", "ActivationName", "AdaptivePool", "Add", "AnyNode", "BatchNorm",
    "BlockInstance", "BoxHead", "ChannelPool", "Concat", "Conv", "ConvTranspose", "DetectHead",
    "Dropout", "ExpectResult", "Flatten", "GlobalPool", "Identity", "Input", "Linear", "Mul",
    "Network", "Node", "Pair", "Poly", "Pool", "ReceptiveField", "Shape", "Softmax", "Upsample",
    "from_json", "json_schema", "shape_str", "to_json",
]
