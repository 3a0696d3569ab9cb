"""Helpers shared by graph rewrites: shape re-inference and renaming."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from cnndsl import ir, shapes
from cnndsl.analysis import params as param_analysis
from cnndsl.analysis import receptive
from cnndsl.diagnostics import CnnError, Code, Diagnostic


def node_error(node: ir.Node, code: Code, message: str, *notes: str) -> CnnError:
    """An error positioned at ``node``; empty notes are dropped."""
    return CnnError([Diagnostic(code, node.span, message, "error", tuple(n for n in notes if n))])


def infer_shapes(network: ir.Network, input_shape: Sequence[int] | None = None) -> ir.Network:
    """A copy of ``network`` with every shape (and parameter count) inferred again.

    ``input_shape`` (C, H, W), if given, replaces the first input's shape, so that a network
    built at one size can be looked at another; detection heads follow the new image size.
    Raises CnnError, positioned at the failing node, when the shapes no longer fit.
    """
    result = copy.deepcopy(network)
    inputs = [node for node in result.nodes if isinstance(node, ir.Input)]
    if input_shape is not None:
        if not inputs:
            raise ValueError("the network has no input to resize")
        if len(input_shape) != len(inputs[0].declared):
            raise ValueError(f"input shape {tuple(input_shape)} does not match the declared "
                             f"{ir.shape_str(inputs[0].declared)}")
        inputs[0].declared = tuple(input_shape)
    image_size = None
    if inputs and len(inputs[0].declared) == 3:
        image_size = (inputs[0].declared[1], inputs[0].declared[2])
    known: dict[str, shapes.Shape] = {}
    for node in result.nodes:
        if isinstance(node, ir.DetectHead):
            node.image_size = image_size
        try:
            node.shape = shapes.infer(node, [known[name] for name in node.inputs])
        except shapes.ShapeError as error:
            message = f"{node.name}: {error.message}"
            raise node_error(node, error.code, message, *error.notes) from None
        known[node.name] = node.shape
    param_analysis.annotate(result)
    receptive.annotate(result)  # adaptive pooling reads other windows at another size
    return result


def rewire(network: ir.Network, alias: dict[str, str]) -> None:
    """Point every reference to a removed tensor at its replacement, in place."""

    def resolve(name: str) -> str:
        seen = set()
        while name in alias and name not in seen:
            seen.add(name)
            name = alias[name]
        return name

    for node in network.nodes:
        node.inputs = [resolve(name) for name in node.inputs]
    network.outputs = {key: resolve(value) for key, value in network.outputs.items()}
    network.tensors = {key: resolve(value) for key, value in network.tensors.items()}
    for instance in network.instances:
        instance.input = resolve(instance.input)
        instance.output = resolve(instance.output)
