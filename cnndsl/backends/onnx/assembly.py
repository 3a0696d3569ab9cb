"""Assembly: a network's weights, lowered nodes and value infos as one model (``build_onnx``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnndsl import ir
from cnndsl.backends.onnx import wire
from cnndsl.backends.onnx.fold import fold_batchnorms
from cnndsl.backends.onnx.graph import shape_of
from cnndsl.backends.onnx.lowering import lower
from cnndsl.backends.onnx.opsets import check_opset, ir_version
from cnndsl.backends.onnx.weights import random_weights
from cnndsl.backends.onnx.writing import as_proto
from cnndsl.symbolic import dim_str

if TYPE_CHECKING:
    import onnx

FLOAT = wire.FLOAT


def _value_info(name: str, shape: tuple[Any, ...], batch: int | str) -> wire.ValueInfo:
    dims: list[int | str] = [batch]
    dims += [d if isinstance(d, int) else dim_str(d) for d in shape]
    return wire.ValueInfo(name, FLOAT, dims)


def _assemble(network: ir.Network, opset: int, weights: dict[str, np.ndarray],
              folded: dict[str, str], dynamic_batch: bool) -> wire.Graph:
    g = lower(network, opset, weights, folded)
    batch: int | str = "N" if dynamic_batch else 1
    inputs = [_value_info(name, shape_of(g, name), batch) for name in network.inputs]
    outputs = []
    for output, target in network.outputs.items():
        source = g.tensor(network.node(target).name)
        if source != output:
            g.emit("Identity", [source], output, output, None)
        outputs.append(_value_info(output, tuple(network.node(target).shape or ()), batch))
    return wire.Graph(network.name, g.nodes, inputs, outputs, weights,
                      doc=f"network {network.name} from {network.file}")


def build_onnx(spec_or_network: ir.Network | str | Path, *, opset: int | None = None,
               dynamic_batch: bool = True,
               weights: str | Path | Mapping[str, Any] | None = None,
               fold_batchnorm: bool = False, seed: int = 0, by: str = "auto",
               rename: Sequence[tuple[str, str]] = (), strict: bool = True,
               **load_options: Any) -> wire.Model:
    """The ONNX model of a network as plain data, ready to encode (see :func:`to_onnx`).

    ``weights`` is a checkpoint file or a mapping, matched to the network ``by`` name, order or
    both after ``rename`` (see :mod:`cnndsl.weights`); under ``strict`` a checkpoint that does
    not fit raises :class:`cnndsl.weights.WeightsError`, otherwise a warning tells what keeps
    its seeded initialisation.
    """
    from cnndsl import __version__
    from cnndsl.compiler import load

    if isinstance(spec_or_network, ir.Network):
        network = spec_or_network
    else:
        network = load(spec_or_network, **load_options)
    chosen = check_opset(opset)
    if weights is None:
        arrays = random_weights(network, seed)
    else:
        from cnndsl.weights import network_weights

        loaded = network_weights(network, weights, by=by, rename=rename, strict=strict,
                                 seed=seed)
        arrays = loaded.arrays
        if loaded.warning is not None:
            import warnings

            from cnndsl.diagnostics import render_all

            warnings.warn(render_all([loaded.warning]), UserWarning, stacklevel=2)
    folded = fold_batchnorms(network, arrays) if fold_batchnorm else {}
    graph = _assemble(network, chosen, arrays, folded, dynamic_batch)
    return wire.Model(graph, chosen, ir_version(chosen), "cnndsl", __version__,
                      doc=f"{network.name} ({network.file}), cnndsl {__version__}",
                      metadata={"cnndsl.network": network.name, "cnndsl.file": network.file,
                                "cnndsl.version": __version__,
                                "cnndsl.batchnorm_folded": str(bool(folded)).lower()})


def to_onnx(spec_or_network: ir.Network | str | Path, *, opset: int | None = None,
            dynamic_batch: bool = True,
            weights: str | Path | Mapping[str, Any] | None = None,
            fold_batchnorm: bool = False, seed: int = 0, by: str = "auto",
            rename: Sequence[tuple[str, str]] = (), strict: bool = True,
            **load_options: Any) -> onnx.ModelProto:
    """Build the ONNX model of a network (or of a spec, loaded with ``load_options``)."""
    model = build_onnx(spec_or_network, opset=opset, dynamic_batch=dynamic_batch,
                       weights=weights, fold_batchnorm=fold_batchnorm, seed=seed, by=by,
                       rename=rename, strict=strict, **load_options)
    return as_proto(model)
