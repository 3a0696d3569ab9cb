"""A checkpoint into a checked network's arrays: the one path ``compile``, ``fcn`` and the
``weights`` command take (the torch backend's ``load_weights`` shares the matching)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnndsl import ir
from cnndsl.diagnostics import CnnError, Diagnostic, Span
from cnndsl.weights.files import Checkpoint, read_checkpoint
from cnndsl.weights.match import Match, match_weights
from cnndsl.weights.report import Report

Shape = tuple[int, ...]
Weights = str | Path | Mapping[str, Any] | Checkpoint


class WeightsError(CnnError, ValueError):
    """A checkpoint that does not fit a network under ``strict``; its one diagnostic says how."""

    def __str__(self) -> str:
        from cnndsl.diagnostics import render_all

        return render_all(self.diagnostics, self.sources)


def load_source(weights: Weights) -> Checkpoint:
    """A checkpoint from a path (read it), a mapping of arrays, or a checkpoint as it is."""
    if isinstance(weights, Checkpoint):
        return weights
    if isinstance(weights, str | Path):
        return read_checkpoint(weights)
    return Checkpoint("weights", dict(weights))


def network_targets(network: ir.Network) -> list[tuple[str, Shape]]:
    """The network's parameters and batch-norm statistics as (state_dict key, shape)."""
    from cnndsl.backends.onnx import parameter_specs

    return [(spec.key, spec.shape) for spec in parameter_specs(network)]


def source_name(checkpoint: Checkpoint) -> str:
    """The file and, for a container, the entry that held the state dict: ``r.pt['model']``."""
    return f"{checkpoint.path}{checkpoint.entry}"


def match_checkpoint(targets: Sequence[tuple[str, Shape]], checkpoint: Checkpoint, *,
                     by: str = "auto", rename: Sequence[tuple[str, str]] = (),
                     network: str = "network") -> Match:
    """:func:`~cnndsl.weights.match.match_weights` for a checkpoint."""
    return match_weights(targets, checkpoint.tensors, by=by, rename=rename,
                         source_name=source_name(checkpoint), network=network,
                         ordered=checkpoint.ordered)


def report_span(network: ir.Network, report: Report) -> Span:
    """Where the report points: the first layer left without its tensors, else the file."""
    first = [key for key, *_ in report.mismatched[:1]] or [key for key, _ in report.missing[:1]]
    if first:
        path = first[0].rsplit(".", 1)[0]
        for node in network.nodes:
            if node.name == path:
                return node.span
    return Span(file=report.source.split("[", 1)[0])


@dataclass(frozen=True)
class NetworkWeights:
    """A network's arrays from a checkpoint, the report, and its warning if it did not fit."""

    arrays: dict[str, np.ndarray]
    report: Report
    warning: Diagnostic | None


def network_weights(network: ir.Network, weights: Weights, *, by: str = "auto",
                    rename: Sequence[tuple[str, str]] = (), strict: bool = True,
                    seed: int = 0, counters: bool = False) -> NetworkWeights:
    """Every array of the network from a checkpoint, with the report.

    Under ``strict`` a checkpoint that does not fit raises :class:`WeightsError`; otherwise the
    tensors it lacks keep the seeded initialisation (``seed``), as
    ``load_state_dict(strict=False)`` keeps a module's, and ``warning`` holds the report.
    With ``counters``, batch norm's ``num_batches_tracked`` follow where the checkpoint has them
    (after their running variance, as in a state dict).
    """
    checkpoint = load_source(weights)
    targets = network_targets(network)
    match = match_checkpoint(targets, checkpoint, by=by, rename=rename, network=network.name)
    report = match.report
    arrays = {key: np.ascontiguousarray(value, dtype=np.float32)
              for key, value in match.arrays(checkpoint.tensors, dict(targets)).items()}
    if counters:
        arrays = _with_counters(arrays, match, checkpoint)
    if report.ok:
        return NetworkWeights(arrays, report, None)
    diagnostic = report.diagnostic(report_span(network, report), strict=strict)
    if strict:
        raise WeightsError([diagnostic])
    if len(arrays) < len(targets):
        from cnndsl.backends.onnx import random_weights

        seeded = random_weights(network, seed)
        filled = {key: arrays[key] if key in arrays else seeded[key] for key, _ in targets}
        arrays = _with_counters(filled, match, checkpoint) if counters else filled
    return NetworkWeights(arrays, report, diagnostic)


def _with_counters(arrays: dict[str, np.ndarray], match: Match,
                   checkpoint: Checkpoint) -> dict[str, np.ndarray]:
    ordered: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        ordered[key] = value
        if key.endswith(".running_var"):
            counter = key[: -len("running_var")] + "num_batches_tracked"
            if counter in match.counters:
                ordered[counter] = np.asarray(checkpoint.tensors[match.counters[counter]],
                                              dtype=np.int64)
    return ordered
