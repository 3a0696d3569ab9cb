"""Dense layers after a flatten -> convolutions, so that a classifier slides over larger inputs.

The first ``linear`` after a ``flatten`` of a C x H x W map becomes ``conv UNITS HxW`` with
valid padding (one output position at the training size); every later ``linear`` becomes a
1x1 convolution. The flatten is dropped; dropout, activations and batch norm stay (they act
per channel, the same on a 1 x 1 map as on features). An ``adaptive_*pool`` right before the
flatten that is the identity at the training size (AlexNet's and VGG's) is dropped too, since
it would otherwise pin the map to one size. ``gap -> flatten -> linear`` becomes
``gap -> conv 1x1`` (a global pool gives 1 x 1 at any size).

A linear weight (out, C*H*W) holds the flattened map in C, H, W order (PyTorch's and ONNX's
flatten), so ``reshape(out, C, H, W)`` is the convolution weight that gives equal outputs at
the training size; :func:`convert_state_dict` applies that to a state dict.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from cnndsl import ir
from cnndsl import shapes as shape_rules
from cnndsl.analysis import params as param_analysis
from cnndsl.analysis import receptive
from cnndsl.diagnostics import CnnError, Code
from cnndsl.transforms.graph import node_error, rewire


@dataclass(frozen=True)
class Conversion:
    """How one linear layer became a convolution."""

    node: str
    """Path of the node (the same before and after)."""
    weight_shape: tuple[int, int, int, int]
    """(out, C, H, W): the convolution weight; the linear weight is (out, C*H*W)."""


@dataclass(frozen=True)
class FullyConvolutional:
    """The converted network, the weight conversions and the nodes dropped on the way."""

    network: ir.Network
    conversions: dict[str, Conversion]
    dropped: list[str]

    def __iter__(self) -> Iterator[Any]:
        # Unpacks as ``network, weight_map = fully_convolutional(net)``.
        return iter((self.network, self.conversions))


def _fail(node: ir.Node, message: str, *notes: str) -> CnnError:
    return node_error(node, Code.UNSUPPORTED, message, *notes)


def _is_identity_adaptive(node: ir.Node) -> bool:
    return (isinstance(node, ir.AdaptivePool) and node.shape is not None
            and tuple(node.shape[1:]) == tuple(node.output_size))


def fully_convolutional(network: ir.Network, *, keep_adaptive: bool = False
                        ) -> FullyConvolutional:
    """Turn the dense layers after each flatten into convolutions (see the module docstring).

    Returns the converted network (node paths unchanged) and, per converted linear layer, the
    shape its weight takes; unpacks as ``(network, weight_map)``. Raises CnnError when a layer
    after the flatten has no convolutional form (a box head) or the flattened map is symbolic.
    """
    result = copy.deepcopy(network)
    producers = result.by_name()
    readers = result.consumers()
    alias: dict[str, str] = {}
    dropped: list[str] = []
    for node in result.nodes:
        if not isinstance(node, ir.Flatten):
            continue
        source = producers[node.inputs[0]]
        if (not keep_adaptive and _is_identity_adaptive(source)
                and len(readers[source.name]) == 1):
            alias[source.name] = source.inputs[0]
            dropped.append(source.name)
        alias[node.name] = node.inputs[0]
        dropped.append(node.name)
    if not dropped:
        return FullyConvolutional(result, {}, [])
    rewire(result, alias)
    result.nodes = [node for node in result.nodes if node.name not in alias]

    conversions: dict[str, Conversion] = {}
    known: dict[str, shape_rules.Shape] = {}
    nodes: list[ir.AnyNode] = []
    for node in result.nodes:
        if isinstance(node, ir.Linear):
            node = _as_conv(node, known[node.inputs[0]])
            conversions[node.name] = Conversion(node.name, _weight_shape(node))
        elif isinstance(node, ir.BoxHead):
            raise _fail(node, f"{node.name}: a box head reads feature vectors and has no "
                        "fully convolutional form", "convert the network before its head")
        nodes.append(node)
        # Shapes of the converted graph so far give the kernel size of the next linear layer.
        try:
            node.shape = shape_rules.infer(node, [known[name] for name in node.inputs])
        except shape_rules.ShapeError as error:
            raise _fail(node, f"{node.name}: {error.message}", *error.notes[:1]) from None
        known[node.name] = node.shape
    result.nodes = nodes
    param_analysis.annotate(result)  # the input is unchanged: every other shape stands
    receptive.annotate(result)  # a dense layer made a convolution reads a window, not all
    return FullyConvolutional(result, conversions, dropped)


def _as_conv(node: ir.Linear, shape: shape_rules.Shape) -> ir.Conv:
    if len(shape) != 3:
        raise _fail(node, f"{node.name}: a linear layer without a flatten before it reads "
                    f"{ir.shape_str(shape)}, not a feature map")
    channels, height, width = shape
    if not (isinstance(channels, int) and isinstance(height, int) and isinstance(width, int)):
        raise _fail(node, f"{node.name}: the flattened map {ir.shape_str(shape)} is symbolic",
                    "convert at a concrete training size (--input 3x224x224)")
    return ir.Conv(name=node.name, inputs=list(node.inputs), span=node.span,
                   trainable=node.trainable, in_channels=channels,
                   out_channels=node.out_features, kernel=(height, width), bias=node.bias)


def _weight_shape(node: ir.Conv) -> tuple[int, int, int, int]:
    return (node.out_channels, node.in_channels, node.kernel[0], node.kernel[1])


def convert_state_dict(state: Mapping[str, Any], conversions: Mapping[str, Conversion],
                       rename: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Reshape the converted layers' weights; other entries pass through unchanged.

    Keys are ``<node path>.<parameter>`` (``classifier.linear1.weight``). Values may be torch
    tensors or numpy arrays. ``rename`` maps node paths to new paths (see
    :func:`cnndsl.transforms.printer.printed_names`) for a state dict of the printed spec.
    """
    result: dict[str, Any] = {}
    for key, value in state.items():
        path, _, leaf = key.rpartition(".")
        conversion = conversions.get(path)
        if conversion is not None and leaf == "weight":
            expected = conversion.weight_shape[0] * math.prod(conversion.weight_shape[1:])
            if _numel(value) != expected:
                raise ValueError(f"{key} has {_numel(value)} values, a conv weight "
                                 f"{conversion.weight_shape} needs {expected}")
            value = value.reshape(conversion.weight_shape)
        if rename is not None and path in rename:
            key = f"{rename[path]}.{leaf}"
        result[key] = value
    return result


def _numel(value: Any) -> int:
    size = getattr(value, "size", None)
    if isinstance(size, int):
        return size  # numpy
    return int(value.numel())


def source_weights(network: ir.Network, to: str, seed: int) -> dict[str, Any]:
    """The source network's seeded initialisation, for a conversion without a checkpoint."""
    if to == "onnx":  # the ONNX backend's own seeded weights: no torch needed
        from cnndsl.backends.onnx import random_weights

        return random_weights(network, seed)
    from cnndsl.backends.torch.runtime import to_torch

    state = to_torch(network, seed=seed).state_dict()
    return {key: value.numpy() for key, value in state.items()}


def write_state(state: Mapping[str, Any], path: str) -> None:
    """Save a state dict as .npz, .safetensors or (through torch) .pt."""
    import numpy as np

    if path.endswith(".npz"):
        arrays: dict[str, Any] = {key: np.asarray(value) for key, value in state.items()}
        np.savez(path, **arrays)
    elif path.endswith(".safetensors"):
        from safetensors.numpy import save_file

        save_file({key: np.ascontiguousarray(value) for key, value in state.items()}, path)
    else:
        import torch

        torch.save({key: torch.from_numpy(np.ascontiguousarray(value))
                    for key, value in state.items()}, path)
