"""The summary of a network: per-layer rows and totals, as a table or JSON.

Each row is one IR node: its path, kind, output shape (``N x C x H x W``), learnable parameters,
MACs for the whole batch (see :mod:`cnndsl.analysis.flops`) and the activation bytes it
allocates for the batch in the chosen dtype (0 for views -- ``flatten``, ``identity``, the head
markers -- and for the activations that the PyTorch backend runs in place).

The JSON object (``cnndsl summary --json``; stable: keys are only ever added) is::

    {"network": str, "input": {name: "N x 3 x 224 x 224"}, "batch": int, "dtype": str,
     "optimizer": str,
     "params": int, "trainable_params": int, "buffers": int,   # buffers: BN running statistics
     "macs": int, "flops": int,                                # for the batch; flops = 2 x macs
     "inference_peak_bytes": int, "training_peak_bytes": int,  # see cnndsl.analysis.memory
     "layers": [{"path": str, "kind": str, "output": [int, ...], "params": int, "macs": int,
                 "activation_bytes": int}, ...],
     "budget": {"bytes": int, "inference_batch": int, "training_batch": int}}  # with --budget

``output`` lists the sizes without the batch. A budget answer of 0 means that not even one
sample fits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cnndsl import ir
from cnndsl.analysis import flops, memory
from cnndsl.analysis import params as param_analysis
from cnndsl.tables import format_table, kind_label


@dataclass(frozen=True)
class LayerRow:
    """One node of the table."""

    path: str
    kind: str
    output: tuple[int, ...]
    params: int
    macs: int
    activation_bytes: int


@dataclass(frozen=True)
class Budget:
    """The planner's answer for a memory budget."""

    bytes: int
    inference_batch: int
    training_batch: int


@dataclass
class Summary:
    """Per-layer rows and totals of a network at a batch size, dtype and optimizer."""

    network: str
    inputs: dict[str, str]
    batch: int
    dtype: str
    optimizer: str
    layers: list[LayerRow]
    params: int
    trainable_params: int
    buffers: int
    macs: int
    flops: int
    inference_peak_bytes: int
    training_peak_bytes: int
    budget: Budget | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object (see the module docstring)."""
        data: dict[str, Any] = {
            "network": self.network,
            "input": self.inputs,
            "batch": self.batch,
            "dtype": self.dtype,
            "optimizer": self.optimizer,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "buffers": self.buffers,
            "macs": self.macs,
            "flops": self.flops,
            "inference_peak_bytes": self.inference_peak_bytes,
            "training_peak_bytes": self.training_peak_bytes,
            "layers": [{**asdict(row), "output": list(row.output)} for row in self.layers],
        }
        if self.budget is not None:
            data["budget"] = asdict(self.budget)
        return data

    def rows(self) -> list[tuple[str, ...]]:
        """The table's cells as text, header first."""
        table: list[tuple[str, ...]] = [
            ("path", "kind", "output", "params", "MACs", "activation")]
        for row in self.layers:
            table.append((
                row.path, row.kind, " x ".join(["N", *map(str, row.output)]), f"{row.params:,}",
                _count(row.macs), memory.format_bytes(row.activation_bytes),
            ))
        return table

    def totals_lines(self) -> list[str]:
        """The totals under the table."""
        lines = [
            f"params {self.params:,} (trainable {self.trainable_params:,}, "
            f"non-trainable {self.params - self.trainable_params:,}); "
            f"buffers {self.buffers:,}",
            f"MACs {_count(self.macs)} ({self.macs:,}); FLOPs {_count(self.flops)}",
            f"peak memory: inference {memory.format_bytes(self.inference_peak_bytes)}, "
            f"training {memory.format_bytes(self.training_peak_bytes)} "
            f"({self.optimizer})",
        ]
        if self.budget is not None:
            lines.append(
                f"budget {memory.format_bytes(self.budget.bytes)}: largest batch "
                f"{self.budget.inference_batch} for inference, "
                f"{self.budget.training_batch} for training"
            )
        return lines

    def heading(self) -> str:
        """The first line: network, inputs, batch and dtype."""
        inputs = ", ".join(f"{name}: {shape}" for name, shape in self.inputs.items())
        return f"{self.network} ({inputs}), batch {self.batch}, {self.dtype}"

    def text(self) -> str:
        """A plain aligned table with totals (deterministic, for files and pipes)."""
        right = (False, False, False, True, True, True)
        lines = [self.heading(), *format_table(self.rows(), right)]
        lines.extend("  " + line for line in self.totals_lines())
        return "\n".join(lines) + "\n"


def _count(value: int) -> str:
    """``4.09 G``: three significant digits with a decimal prefix."""
    for prefix, scale in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}"
    return str(value)


_VIEWS = {"flatten", "identity", "box_head", "detect_head"}


def _layers(network: ir.Network, batch: int, dtype: str) -> list[LayerRow]:
    elements = memory.activation_elements(network)
    in_place = memory.in_place_nodes(network)
    width = memory.precision(dtype).activation
    rows = []
    for node in network.nodes:
        kind: str = node.kind  # type: ignore[attr-defined]
        shares = kind in _VIEWS or node.name in in_place
        rows.append(LayerRow(
            node.name, kind_label(node), flops.concrete_shape(node.shape, node.name), node.params,
            batch * flops.node_macs(node, network),
            0 if shares else batch * elements[node.name] * width,
        ))
    return rows


def summary(spec: ir.Network | str | Path, *, batch: int = 1, dtype: str = "fp32",
            optimizer: str = "sgd", input: str | None = None, device: str = "cpu",
            budget: int | str | None = None, **load_options: Any) -> Summary:
    """Summarise a network, a spec path or spec text at a batch size, dtype and optimizer."""
    if isinstance(spec, ir.Network):
        network = spec
    else:
        from cnndsl.compiler import load

        network = load(spec, input=input, **load_options)
    inference = memory.peak_bytes(network, "inference", batch, dtype, optimizer, device)
    training = memory.peak_bytes(network, "training", batch, dtype, optimizer, device)
    answer = None
    if budget is not None:
        limit = (memory.parse_bytes(budget) if isinstance(budget, str)
                 else memory.checked_bytes(budget, budget))
        answer = Budget(
            limit,
            memory.largest_batch(network, "inference", limit, dtype, optimizer, device),
            memory.largest_batch(network, "training", limit, dtype, optimizer, device),
        )
    layers = _layers(network, batch, dtype)
    macs = sum(row.macs for row in layers)
    return Summary(
        network=network.name,
        inputs={name: ir.shape_str(network.node(name).shape) for name in network.inputs},
        batch=batch, dtype=dtype, optimizer=optimizer,
        layers=layers,
        params=network.total_params, trainable_params=network.trainable_params,
        buffers=param_analysis.total_buffers(network),
        macs=macs, flops=2 * macs,
        inference_peak_bytes=inference, training_peak_bytes=training,
        budget=answer,
    )


__all__ = ["Budget", "LayerRow", "Summary", "summary"]
