"""DOT text of a network (Graphviz's language): nodes with their kind, edges with shapes, and a
nested cluster per block. Needs nothing installed; ``svg`` runs Graphviz on it."""

from __future__ import annotations

from cnndsl.render.view import View, ViewGroup

_COLOURS = {
    "conv": "#dbe8fb", "conv_transpose": "#dbe8fb", "linear": "#e6dcf7", "batchnorm": "#f1f1f1",
    "add": "#fde9c9", "mul": "#fde9c9", "concat": "#fde9c9", "input": "#d9f2dc",
}


def quote(text: str) -> str:
    """A DOT string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _colour(kind: str) -> str:
    base = kind.split(":")[0]
    if base.startswith("pool") or base.endswith("pool"):
        return "#d7f0ee"
    return _COLOURS.get(base, "#ffffff")


def to_dot(view: View) -> str:
    """The network as a ``digraph``: deterministic, one line per node and edge."""
    lines = [
        f"digraph {quote(view.network)} {{",
        f"  graph [rankdir=TB, fontname=Helvetica, fontsize=11, labelloc=t, "
        f"label={quote(view.network)}];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=10];',
        "  edge [fontname=Helvetica, fontsize=8, color=\"#666666\"];",
    ]
    children: dict[str, list[ViewGroup]] = {}
    for group in view.groups:
        children.setdefault(group.parent, []).append(group)
    members: dict[str, list[str]] = {}
    for node in view.nodes:
        label = f"{node.name}\n{node.kind}" + (f" {node.detail}" if node.detail else "")
        members.setdefault(node.group, []).append(
            f"{quote(node.name)} [label={quote(label)}, fillcolor=\"{_colour(node.kind)}\"];")

    def emit(path: str, indent: str) -> None:
        for line in members.get(path, ()):
            lines.append(indent + line)
        for group in children.get(path, ()):
            lines.append(f"{indent}subgraph {quote('cluster_' + group.path)} {{")
            lines.append(f"{indent}  label={quote(group.path + ': ' + group.block)}; "
                         'style="rounded,dashed"; color="#999999";')
            emit(group.path, indent + "  ")
            lines.append(f"{indent}}}")

    emit("", "  ")
    for source, target, shape in view.edges:
        lines.append(f"  {quote(source)} -> {quote(target)} [label={quote(shape)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


__all__ = ["quote", "to_dot"]
