"""IR -> .cnn text: a flat spec with one labelled statement per node.

The printed spec has no blocks, repeats or composites: every IR node becomes one statement
``label: [source ->] word args``, so that checking the text gives back a network with the same
nodes in the same order, the same shapes and the same parameter counts. Labels are the node
paths with dots turned into underscores (``layer1.0.conv1`` -> ``layer1_0_conv1``); outputs keep
their names. The elaborator names a node read from an explicit source ``label.word1``, so the
node paths of the re-read spec differ from the labels; :func:`printed_names` pairs them up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from cnndsl import ir, layers
from cnndsl.analysis.params import total_buffers
from cnndsl.symbolic import dim_str

# Words that cannot be labels: the grammar's keywords, and layer words (a statement `relu`
# after a tensor labelled `relu` would read the tensor instead of applying the layer).
_RESERVED = frozenset(
    {"input", "output", "const", "expect", "block", "network", "import", "pad", "shortcut", "x",
     "true", "false", "same", "valid", "N", *layers.LAYERS, *layers.TENSOR_OPS, *layers.COMPOSITES}
)


def _number(value: float) -> str:
    """A float as the shortest text that reads back to the same value."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _pair(pair: Sequence[int]) -> str:
    return f"{pair[0]}x{pair[1]}"


def _tuple(values: Sequence[Any]) -> str:
    return "(" + ", ".join(str(v) for v in values) + ")"


def _bias(bias: bool) -> str:
    return f"bias={'true' if bias else 'false'}"


def _convolution(word: str, node: ir.Conv | ir.ConvTranspose, *extra: str) -> str:
    parts = [f"{word} {node.out_channels} {_pair(node.kernel)}", f"/{_tuple(node.stride)}",
             f"pad {_tuple(node.padding)}", *extra]
    if node.dilation != (1, 1):
        parts.append(f"dilation={_tuple(node.dilation)}")
    if node.groups != 1:
        parts.append(f"groups={node.groups}")
    parts.append(_bias(node.bias))
    return " ".join(parts)


def _conv(node: ir.Conv) -> str:
    return _convolution("conv", node)


def _conv_transpose(node: ir.ConvTranspose) -> str:
    extra = [] if node.output_padding == (0, 0) else [
        f"output_padding={_tuple(node.output_padding)}"]
    return _convolution("deconv", node, *extra)


def _batchnorm(node: ir.BatchNorm) -> str:
    return f"bn eps={_number(node.eps)} momentum={_number(node.momentum)}"


_ACTIVATION_WORDS = {"leaky_relu": "leakyrelu"}


def _activation(node: ir.Activation) -> str:
    word = _ACTIVATION_WORDS.get(node.function, node.function)
    if node.function == "leaky_relu":
        return f"{word} {_number(node.negative_slope)}"
    return word


def _pool(node: ir.Pool) -> str:
    text = (f"{node.mode}pool {_pair(node.kernel)} /{_tuple(node.stride)} "
            f"pad {_tuple(node.padding)}")
    if node.ceil_mode:
        text += " ceil"
    if node.mode == "avg" and not node.count_include_pad:
        text += " count_include_pad=false"
    return text


def _global_pool(node: ir.GlobalPool) -> str:
    return "gap" if node.mode == "avg" else "gmp"


def _adaptive_pool(node: ir.AdaptivePool) -> str:
    return f"adaptive_{node.mode}pool {_pair(node.output_size)}"


def _lrn(node: ir.LRN) -> str:
    return (f"lrn {node.size} alpha={_number(node.alpha)} beta={_number(node.beta)} "
            f"k={_number(node.k)}")


def _upsample(node: ir.Upsample) -> str:
    return f"upsample scale={_tuple(node.scale)} {node.mode}"


def _box_head(node: ir.BoxHead) -> str:
    return f"boxes {node.format} boxes={node.boxes}"


def _detect_head(node: ir.DetectHead) -> str:
    anchors = ", ".join(f"({_number(w)}, {_number(h)})" for w, h in node.anchors)
    return f"detect anchors=({anchors}) classes={node.classes} stride={node.stride}"


_LAYER_TEXT: dict[str, Callable[..., str]] = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "batchnorm": _batchnorm,
    "activation": _activation,
    "softmax": lambda node: "softmax",
    "pool": _pool,
    "global_pool": _global_pool,
    "adaptive_pool": _adaptive_pool,
    "channel_pool": lambda node: f"channel_maxpool {node.kernel}",
    "lrn": _lrn,
    "dropout": lambda node: f"dropout {_number(node.p)}",
    "flatten": lambda node: "flatten",
    "linear": lambda node: f"linear {node.out_features} {_bias(node.bias)}",
    "upsample": _upsample,
    "identity": lambda node: "identity",
    "box_head": _box_head,
    "detect_head": _detect_head,
}
_TENSOR_OPS = ("add", "mul", "concat")


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
        dims = " x ".join(dim_str(d) for d in node.declared)
        return f"input {label}: {dims}"
    sources = [labels[name] for name in node.inputs]
    if node.kind in _TENSOR_OPS:
        return f"{label}: {node.kind}({', '.join(sources)})"
    text = _LAYER_TEXT[node.kind](node)
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
