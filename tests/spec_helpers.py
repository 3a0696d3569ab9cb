"""Shared by the backend and analysis tests: the seed specs, and each at a small input size."""

from __future__ import annotations

from pathlib import Path

import cnndsl
from cnndsl import ir

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.cnn"))


def small_network(path: Path) -> ir.Network:
    """The spec at the smallest of a few square sizes it accepts, else at its declared size.

    Its expect lines describe the full size; under the smaller input they are only warnings.
    """
    declared = cnndsl.check(path).network
    assert declared is not None, path
    channels = declared.node(declared.inputs[0]).shape[0]
    for side in (32, 64, 128):
        result = cnndsl.check(path, input=f"{channels}x{side}x{side}")
        if result.ok and result.network is not None:
            return result.network
    return declared
