"""Weights: every learnable tensor and buffer of a network, seeded or read from a checkpoint."""

from __future__ import annotations

import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnndsl import ir
from cnndsl.diagnostics import CnnError, Code, Diagnostic


@dataclass(frozen=True)
class ParamSpec:
    """One learnable tensor or buffer: its state_dict key, shape and default initialisation."""

    key: str
    shape: tuple[int, ...]
    init: str  # "normal" (Kaiming with fan_out), "uniform" (bound 1/sqrt(fan)), "ones", "zeros"
    fan: int = 1




# How a state's initialisation is drawn here (see _initial_value and random_weights).
_INITS = {"kaiming_normal": "normal", "kaiming_uniform": "uniform", "uniform": "uniform",
          "ones": "ones", "zeros": "zeros"}


def parameter_specs(network: ir.Network) -> list[ParamSpec]:
    """Every learnable tensor and buffer of the network, in the PyTorch backend's order.

    From each kind's state (``Node.state``); integer counters (batch norm's
    ``num_batches_tracked``) have no place in an ONNX model and are left out.
    """
    return [ParamSpec(f"{node.name}.{state.name}", state.shape, _INITS[state.init], state.fan)
            for node in network.nodes for state in node.state() if state.dtype == "float32"]


def _initial_value(spec: ParamSpec, seed: int) -> np.ndarray:
    if spec.init in ("ones", "zeros"):
        return (np.ones if spec.init == "ones" else np.zeros)(spec.shape, np.float32)
    # Seeding per key keeps a tensor's values when other layers are added or removed.
    rng = np.random.default_rng([seed, zlib.crc32(spec.key.encode())])
    bound = math.sqrt(6.0 / spec.fan) if spec.init == "normal" else 1.0 / math.sqrt(spec.fan)
    values = rng.random(spec.shape, dtype=np.float32)  # [0, 1), then [-bound, bound)
    values -= np.float32(0.5)
    values *= np.float32(2 * bound)
    return values


def random_weights(network: ir.Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded initialisation with the PyTorch backend's variances; one stream per key.

    Convolutions draw uniformly with the variance of the torch backend's Kaiming normal
    (bound sqrt(6 / fan_out)): uniform floats are several times cheaper to draw than normals,
    and numpy draws them without the GIL, so threads share the work. Both matter for a cold
    ``cnndsl compile`` of 25M parameters; the values depend only on the seed and the key.
    """
    specs = parameter_specs(network)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(_initial_value, spec, seed) for spec in specs]
        weights: dict[str, np.ndarray] = {}
        for spec, future in zip(specs, futures, strict=True):
            try:
                weights[spec.key] = future.result()
            except (MemoryError, ValueError):  # numpy: "array is too big" or out of memory
                for pending in futures:
                    pending.cancel()
                node = network.node(spec.key.rsplit(".", 1)[0])
                size = math.prod(spec.shape) * 4 / 1e9
                message = (f"cannot allocate {spec.key}: {' x '.join(map(str, spec.shape))} "
                           f"floats ({size:,.1f} GB)")
                raise CnnError([Diagnostic(Code.LIMIT, node.span, message)]) from None
    return weights


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays by key from a checkpoint file (see :func:`cnndsl.weights.read_checkpoint`)."""
    from cnndsl.weights import read_checkpoint

    return read_checkpoint(path).tensors
