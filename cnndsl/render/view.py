"""What every picture of a network shows, computed once: nodes, edges with shapes, block groups.

A group is a path prefix that more than one layer shares (a block call such as ``layer1.0``, a
stage such as ``layer1``), as in ``cnndsl summary --depth``; a node belongs to the innermost
group whose prefix its path has.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from cnndsl import ir
from cnndsl.analysis import memory, receptive
from cnndsl.analysis.summary import Summary, summary
from cnndsl.symbolic import dim_str


@dataclass(frozen=True)
class ViewNode:
    """One IR node as drawn: its path, kind, a short description and its figures (one image)."""

    name: str
    kind: str
    detail: str
    shape: str
    params: int
    macs: int
    activation_bytes: int
    rf: str
    jump: str
    group: str  # the innermost group's path, "" at the top


@dataclass(frozen=True)
class ViewGroup:
    """A path prefix shared by several layers: a block call or a stage."""

    path: str
    block: str
    parent: str  # the enclosing group's path, "" at the top
    layers: int
    params: int
    macs: int


@dataclass
class View:
    """A network ready to draw."""

    network: str
    inputs: dict[str, str]
    nodes: list[ViewNode]
    edges: list[tuple[str, str, str]]  # source, target, the source's shape without the batch
    groups: list[ViewGroup]
    totals: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The data the HTML report embeds."""
        return {
            "network": self.network, "inputs": self.inputs,
            "nodes": [asdict(n) for n in self.nodes],
            "edges": [list(e) for e in self.edges],
            "groups": [asdict(g) for g in self.groups],
            "totals": self.totals, "timeline": self.timeline,
        }


def detail(node: ir.Node) -> str:
    """``64, 7x7 /2 pad 3``: the arguments that tell layers of one kind apart."""
    if isinstance(node, ir.Conv | ir.ConvTranspose):
        text = f"{node.out_channels}, {node.kernel[0]}x{node.kernel[1]}"
        if node.stride != (1, 1):
            text += f" /{_pair(node.stride)}"
        if node.dilation != (1, 1):
            text += f" dilation {_pair(node.dilation)}"
        if node.groups != 1:
            text += f" groups {node.groups}"
        return text
    if isinstance(node, ir.Pool):
        return f"{node.kernel[0]}x{node.kernel[1]} /{_pair(node.stride)}"
    if isinstance(node, ir.AdaptivePool):
        return f"to {node.output_size[0]}x{node.output_size[1]}"
    if isinstance(node, ir.Linear):
        return str(node.out_features)
    if isinstance(node, ir.Upsample):
        return f"x{_pair(node.scale)} {node.mode}"
    if isinstance(node, ir.Dropout):
        return f"p={node.p:g}"
    return ""


def _pair(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]},{pair[1]}"


def shape_label(shape: ir.Shape | None) -> str:
    """``64x56x56``: a shape without the batch, for an edge."""
    if shape is None:
        return "?"
    return "x".join(dim_str(d) for d in shape)


def _innermost(path: str, groups: set[str]) -> str:
    parts = path.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:depth])
        if prefix in groups:
            return prefix
    return ""


def build(network: ir.Network, result: Summary | None = None, *, with_timeline: bool = True,
          batch: int = 1) -> View:
    """The view of a checked network with concrete sizes (ValueError when they are symbolic)."""
    result = result or summary(network, batch=batch)
    paths = {block.path for block in result.blocks}
    groups = [ViewGroup(b.path, b.block, _innermost(b.path, paths), b.layers, b.params,
                        b.macs_per_image) for b in result.blocks]
    by_name = network.by_name()
    nodes = []
    for row in result.layers:
        node = by_name[row.path]
        field_ = row.receptive_field
        nodes.append(ViewNode(
            row.path, row.kind, detail(node), shape_label(node.shape), row.params,
            row.macs_per_image, row.activation_bytes, receptive.size_text(field_),
            receptive.pair_text(field_.jump if field_ else None), _innermost(row.path, paths),
        ))
    edges = [(source, node.name, shape_label(by_name[source].shape))
             for node in network.nodes for source in node.inputs]
    totals = {
        "params": result.params, "macs_per_image": result.macs_per_image,
        "param_bytes": result.param_bytes,
        "inference_peak_bytes": result.inference_peak_bytes,
        "training_peak_bytes": result.training_peak_bytes, "batch": result.batch,
        "dtype": result.dtype, "optimizer": result.optimizer,
        "outputs": {name: ir.shape_str(shape) for name, shape in network.output_shapes().items()},
    }
    timeline = []
    if with_timeline:
        timeline = [asdict(event) for event in memory.timeline(
            network, "training", result.batch, result.dtype, result.optimizer)]
    return View(network.name, result.inputs, nodes, edges, groups, totals, timeline)


__all__ = ["View", "ViewGroup", "ViewNode", "build", "detail", "shape_label"]
