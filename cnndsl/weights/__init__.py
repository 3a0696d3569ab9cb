"""Pretrained weights in and out: read a checkpoint, pair it with a network, report once.

:func:`read_checkpoint` reads ``.safetensors`` / ``.npz`` (numpy only) and ``.pt`` / ``.pth``
(torch); :func:`match_weights` pairs its tensors with a network's by name, by order or both
(``auto``); :func:`network_weights` does both for a checked network and returns its arrays.
Nothing here imports torch unless a ``.pt`` file is read or written.
"""

from __future__ import annotations

from cnndsl.weights.files import (
    Checkpoint,
    read_checkpoint,
    read_safetensors,
    write_checkpoint,
    write_safetensors,
)
from cnndsl.weights.load import (
    NetworkWeights,
    WeightsError,
    load_source,
    network_targets,
    network_weights,
)
from cnndsl.weights.match import MODES, Match, fits, match_weights, parse_rename
from cnndsl.weights.report import Report

__all__ = ["MODES", "Checkpoint", "Match", "NetworkWeights", "Report", "WeightsError", "fits",
           "load_source", "match_weights", "network_targets", "network_weights", "parse_rename",
           "read_checkpoint", "read_safetensors", "write_checkpoint", "write_safetensors"]
