"""IR -> .cnn text: a flat spec with one labelled statement per node.

The printed spec has no blocks, repeats or composites: every IR node becomes one statement
``label: [source ->] word args`` (the words from its kind's ``Node.text``), so that checking
the text gives back a network with the same nodes in the same order, the same shapes and the
same parameter counts. Labels are the node
paths with dots turned into underscores (``layer1.0.conv1`` -> ``layer1_0_conv1``); outputs keep
their names. The elaborator names a node read from an explicit source ``label.word1``, so the
node paths of the re-read spec differ from the labels; :func:`printed_names` pairs them up.
"""

from __future__ import annotations

import re

from cnndsl import ir, layers
from cnndsl.analysis.params import total_buffers

# Words that cannot be labels: the grammar's keywords, and layer words (a statement `relu`
# after a tensor labelled `relu` would read the tensor instead of applying the layer).
_RESERVED = frozenset(
    {"input", "output", "const", "expect", "block", "network", "import", "pad", "shortcut", "x",
     "true", "false", "same", "valid", "N", *layers.LAYERS, *layers.TENSOR_OPS, *layers.COMPOSITES}
)


def _labels(network: ir.Network) -> dict[str, str]:
    """A unique statement label per node: its output name if it is an output, else its path."""
    preferred = {target: name for name, target in network.outputs.items()}
    labels: dict[str, str] = {}
    used: set[str] = set()
    for node in network.nodes:
        base = re.sub(r"\W", "_", preferred.get(node.name, node.name))
        if not re.match(r"[A-Za-z_]", base):
            base = "t_" + base
        if base in _RESERVED:
            base += "_"
        label, index = base, 2
        while label in used:
            label, index = f"{base}_{index}", index + 1
        used.add(label)
        labels[node.name] = label
    return labels


def _statement(node: ir.AnyNode, labels: dict[str, str], previous: str | None) -> str:
    label = labels[node.name]
    if isinstance(node, ir.Input):
        return f"input {label}: {node.text()}"
    sources = [labels[name] for name in node.inputs]
    if node.tensor_word:
        return f"{label}: {node.text()}({', '.join(sources)})"
    text = node.text()
    if len(sources) == 1 and sources[0] == previous:
        return f"{label}: {text}"
    return f"{label}: {sources[0]} -> {text}"


def print_spec(network: ir.Network, *, name: str | None = None, expects: bool = True,
               comment: str = "") -> str:
    """The network as a flat .cnn spec; with ``expects``, its totals and output shapes."""
    labels = _labels(network)
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines.append(f"network {name or network.name} {{")
    previous: str | None = None
    for node in network.nodes:
        lines.append("  " + _statement(node, labels, previous))
        previous = labels[node.name]
    lines.append("  output " + ", ".join(labels[target] for target in network.outputs.values()))
    if expects:
        lines.append(f"  expect params == {network.total_params}")
        lines.append(f"  expect buffers == {total_buffers(network)}")
        for target in network.outputs.values():
            shape = network.node(target).shape
            if shape is not None and all(isinstance(d, int) for d in shape):
                lines.append(f"  expect {labels[target]} == {ir.shape_str(shape)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def printed_names(original: ir.Network, printed: ir.Network) -> dict[str, str]:
    """Original node path -> the path of the same node in the re-read printed spec."""
    if len(original.nodes) != len(printed.nodes):
        raise ValueError(f"{len(original.nodes)} nodes printed, {len(printed.nodes)} read back")
    pairs = {}
    for old, new in zip(original.nodes, printed.nodes, strict=True):
        if old.kind != new.kind:  # type: ignore[attr-defined]
            raise ValueError(f"node {old.name} ({old.kind}) read back as {new.kind}")  # type: ignore[attr-defined]
        pairs[old.name] = new.name
    return pairs
