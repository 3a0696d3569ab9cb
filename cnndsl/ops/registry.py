"""Completeness of the registry: every kind states every fact, every backend handles every kind.

:func:`definitions` reads, for each kind, the facts that its class states in its own body
(not inherited: a kind that leaves out ``state`` must not silently count zero parameters);
:func:`handler_tables` collects the per-kind tables that the backends register into.
:func:`missing` names each (kind, table) pair that is absent; the test suite asserts that it
is empty, and that deleting any one entry from a copy is noticed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cnndsl.ops import REGISTRY
from cnndsl.ops.base import Node

# The facts that each kind's class must state itself (see cnndsl/ops/base.py).
FACTS = ("infer", "state", "macs", "text", "autograd", "example")


@dataclass(frozen=True)
class Definition:
    """What one kind states: its class and each fact (None where the class leaves it out)."""

    kind: str
    node: type[Node]
    facts: Mapping[str, Any]
    words: tuple[str, ...]


def definition(cls: type[Node]) -> Definition:
    """The facts that ``cls`` states in its own body."""
    own = vars(cls)
    facts = {name: own.get(name) or None for name in FACTS}
    words = tuple(layer.word for layer in own.get("words", ()))
    return Definition(cls.kind, cls, facts, words)


def definitions() -> dict[str, Definition]:
    """Every kind's definition, in registry order."""
    return {kind: definition(cls) for kind, cls in REGISTRY.items()}


def handler_tables() -> dict[str, Mapping[str, Any]]:
    """The per-kind tables that backends and phases register into (nothing imports torch)."""
    from cnndsl.analysis import memory, receptive
    from cnndsl.backends import onnx
    from cnndsl.backends.torch import ops as torch_ops

    torch_kinds = {**torch_ops.MODULES, **{kind: "tensor operation"
                                          for kind in torch_ops.FUNCTIONS}}
    return {
        "torch module (backends/torch/ops.py @module)": torch_kinds,
        "ONNX lowering (backends/onnx/lowerings @lowering)": onnx.LOWERINGS,
        "memory forward rule (analysis/memory.py)": memory.FORWARD,
        "memory backward rule (analysis/memory.py)": memory.BACKWARD,
        "receptive field rule (analysis/receptive.py RULES)": receptive.RULES,
        "torch module classes (backends/torch/ops.py @module classes=)": torch_ops.CLASSES,
    }


# Tables that need an entry only for some kinds: memory rules are derived from the autograd
# facts unless registered; module classes matter only for kinds with state.
def _needs_classes(definition: Definition) -> bool:
    state = definition.facts.get("state")
    return state is not None and state.__name__ != "stateless"


OPTIONAL: dict[str, Callable[[Definition], bool]] = {
    "memory forward rule (analysis/memory.py)": lambda definition: False,
    "memory backward rule (analysis/memory.py)": lambda definition: False,
    "torch module classes (backends/torch/ops.py @module classes=)": _needs_classes,
}


def missing(registry: Mapping[str, Definition],
            tables: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every absent fact or handler, as "kind 'k': no <what>"; empty when complete."""
    problems = []
    for kind, item in registry.items():
        where = f"cnndsl/ops, class {item.node.__name__}"
        for fact in FACTS:
            if item.facts.get(fact) is None:
                problems.append(f"kind {kind!r}: no {fact} ({where})")
        # graph inputs are the grammar's `input` statement; tensor words are add(a, b) ...
        if not item.words and not item.node.tensor_word and kind != "input":
            problems.append(f"kind {kind!r}: no words ({where})")
        for table, entries in tables.items():
            required = OPTIONAL.get(table, lambda definition: True)(item)
            if required and kind not in entries:
                problems.append(f"kind {kind!r}: missing from {table}")
    for table, entries in tables.items():
        for kind in entries:
            if kind not in registry:
                problems.append(f"table {table} has an entry for unknown kind {kind!r}")
    return problems
