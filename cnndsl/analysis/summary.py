"""The summary of a network: per-layer rows, block subtotals and totals, as a table or JSON.

Each row is one IR node: its path, kind, output shape (with the batch when one is given, ``N``
otherwise), learnable parameters, MACs per image (see :mod:`cnndsl.analysis.flops`), the
activation bytes it allocates for the batch in the chosen dtype (0 for views -- ``flatten``,
``identity``, the head markers -- and for the activations that the PyTorch backend runs in
place) and its receptive field (:mod:`cnndsl.analysis.receptive`). With ``depth``, the rows of
each block (grouped by the first ``depth`` parts of their paths) collapse into one subtotal.

The JSON object (``cnndsl summary --format json``; stable: keys are only ever added) is::

    {"network": str, "input": {name: "N x 3 x 224 x 224"}, "batch": int, "dtype": str,
     "optimizer": str,
     "params": int, "trainable_params": int, "buffers": int,   # buffers: BN running statistics
     "param_bytes": int, "buffer_bytes": int,                  # in the dtype's storage
     "macs": int, "flops": int,                                # for the batch; flops = 2 x macs
     "macs_per_image": int,
     "inference_peak_bytes": int, "training_peak_bytes": int,  # see cnndsl.analysis.memory
     "layers": [{"path": str, "kind": str, "output": [int, ...], "params": int, "macs": int,
                 "macs_per_image": int, "activation_bytes": int,
                 "receptive_field": {...} | null}, ...],      # as in the IR
     "blocks": [{"path": str, "block": str, "depth": int, "layers": int, "params": int,
                 "macs": int, "macs_per_image": int, "activation_bytes": int}, ...],
     "budget": {"bytes": int, "inference_batch": int, "training_batch": int,
                "inference_fits": bool, "training_fits": bool}}   # with --budget

``output`` lists the sizes without the batch; ``macs`` and ``activation_bytes`` are for the
batch. ``blocks`` has a subtotal for every path prefix that groups more than one layer (a block
call, a stage of repeated blocks), outermost first. A budget batch of 0 means that not even one
sample fits (``*_fits`` false).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cnndsl import ir
from cnndsl.analysis import flops, memory, receptive
from cnndsl.analysis import params as param_analysis
from cnndsl.tables import format_table, kind_label


@dataclass(frozen=True)
class LayerRow:
    """One node of the table; ``macs`` and ``activation_bytes`` for the batch."""

    path: str
    kind: str
    output: tuple[int, ...]
    params: int
    macs: int
    activation_bytes: int
    macs_per_image: int = 0
    receptive_field: ir.ReceptiveField | None = None


@dataclass(frozen=True)
class BlockRow:
    """The subtotal of the layers under one path prefix."""

    path: str
    block: str
    depth: int
    layers: int
    output: tuple[int, ...]
    params: int
    macs: int
    macs_per_image: int
    activation_bytes: int
    receptive_field: ir.ReceptiveField | None = None  # of the block's last layer

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object of a block (see the module docstring)."""
        return {"path": self.path, "block": self.block, "depth": self.depth,
                "layers": self.layers, "params": self.params, "macs": self.macs,
                "macs_per_image": self.macs_per_image, "activation_bytes": self.activation_bytes}


@dataclass(frozen=True)
class Budget:
    """The planner's answer for a memory budget."""

    bytes: int
    inference_batch: int
    training_batch: int
    inference_one_bytes: int = 0  # the peak of one sample, to say by how much it does not fit
    training_one_bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object (see the module docstring)."""
        return {"bytes": self.bytes, "inference_batch": self.inference_batch,
                "training_batch": self.training_batch,
                "inference_fits": self.inference_batch > 0,
                "training_fits": self.training_batch > 0}

    def text(self) -> str:
        """``budget 16 GiB: largest batch 1668 for inference, 196 for training``, or no fit."""
        head = f"budget {memory.format_bytes(self.bytes)}: "
        if not self.inference_batch:
            return head + (
                f"does not fit: one sample needs {memory.format_bytes(self.inference_one_bytes)} "
                f"for inference, {memory.format_bytes(self.training_one_bytes)} for training")
        fits = f"largest batch {self.inference_batch} for inference, "
        if not self.training_batch:
            return head + fits + (
                f"training does not fit (one sample needs "
                f"{memory.format_bytes(self.training_one_bytes)})")
        return head + fits + f"{self.training_batch} for training"


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
    batch_given: bool = True
    macs_per_image: int = 0
    param_bytes: int = 0
    buffer_bytes: int = 0
    blocks: list[BlockRow] = field(default_factory=list)

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
            "param_bytes": self.param_bytes,
            "buffer_bytes": self.buffer_bytes,
            "macs": self.macs,
            "flops": self.flops,
            "macs_per_image": self.macs_per_image,
            "inference_peak_bytes": self.inference_peak_bytes,
            "training_peak_bytes": self.training_peak_bytes,
            "layers": [_layer_json(row) for row in self.layers],
            "blocks": [block.to_json() for block in self.blocks],
        }
        if self.budget is not None:
            data["budget"] = self.budget.to_json()
        return data

    def _shape(self, output: tuple[int, ...]) -> str:
        return " x ".join([str(self.batch) if self.batch_given else "N", *map(str, output)])

    def rows(self, depth: int | None = None) -> list[tuple[str, ...]]:
        """The table's cells as text, header first; with ``depth``, blocks as subtotals."""
        table: list[tuple[str, ...]] = [
            ("path", "kind", "output", "params", "MACs/image", "activation", "rf")]
        for row in self.layers_at(depth):
            if isinstance(row, BlockRow):
                table.append((
                    row.path, f"{row.block} ({row.layers} layers)", self._shape(row.output),
                    f"{row.params:,}", _count(row.macs_per_image),
                    memory.format_bytes(row.activation_bytes),
                    receptive.size_text(row.receptive_field),
                ))
                continue
            table.append((
                row.path, row.kind, self._shape(row.output), f"{row.params:,}",
                _count(row.macs_per_image), memory.format_bytes(row.activation_bytes),
                receptive.size_text(row.receptive_field),
            ))
        return table

    def layers_at(self, depth: int | None) -> list[LayerRow | BlockRow]:
        """The layers, with those under a block deeper than ``depth`` folded into its subtotal."""
        if depth is None:
            return list(self.layers)
        folded = {block.path: block for block in self.blocks if block.depth == depth}
        shown: list[LayerRow | BlockRow] = []
        seen: set[str] = set()
        for row in self.layers:
            prefix = ".".join(row.path.split(".")[:depth])
            block = folded.get(prefix) if prefix != row.path else None
            if block is None:
                shown.append(row)
            elif prefix not in seen:
                seen.add(prefix)
                shown.append(block)
        return shown

    def totals_lines(self) -> list[str]:
        """The totals under the table."""
        width = memory.precision(self.dtype)
        lines = [
            f"params {self.params:,} (trainable {self.trainable_params:,}, "
            f"non-trainable {self.params - self.trainable_params:,}): "
            f"{memory.format_bytes(self.param_bytes)} at {width.weight * 8} bits; "
            f"buffers {self.buffers:,}: {memory.format_bytes(self.buffer_bytes)}",
            f"MACs per image {_count(self.macs_per_image)} ({self.macs_per_image:,})"
            + (f"; per batch of {self.batch} {_count(self.macs)} ({self.macs:,})"
               if self.batch != 1 else "")
            + f"; FLOPs per {'batch' if self.batch != 1 else 'image'} {_count(self.flops)}",
            f"peak memory: inference {memory.format_bytes(self.inference_peak_bytes)}, "
            f"training {memory.format_bytes(self.training_peak_bytes)} "
            f"({self.optimizer})",
        ]
        if self.budget is not None:
            lines.append(self.budget.text())
        return lines

    def heading(self) -> str:
        """The first line: network, inputs, batch and dtype."""
        inputs = ", ".join(
            f"{name}: {shape.replace('N', str(self.batch), 1) if self.batch_given else shape}"
            for name, shape in self.inputs.items())
        batch = f"batch {self.batch}" if self.batch_given else "per image (N = 1)"
        return f"{self.network} ({inputs}), {batch}, {self.dtype}"

    def text(self, depth: int | None = None) -> str:
        """A plain aligned table with totals (deterministic, for files and pipes)."""
        right = (False, False, False, True, True, True, True)
        lines = [self.heading(), *format_table(self.rows(depth), right)]
        lines.extend("  " + line for line in self.totals_lines())
        return "\n".join(lines) + "\n"


def _layer_json(row: LayerRow) -> dict[str, Any]:
    data = {**asdict(row), "output": list(row.output)}
    field_ = row.receptive_field
    data["receptive_field"] = None if field_ is None else _jsonable(asdict(field_))
    return data


def _jsonable(value: Any) -> Any:
    """Tuples as lists, as JSON has them."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


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
        per_image = flops.node_macs(node, network)
        rows.append(LayerRow(
            node.name, kind_label(node), flops.concrete_shape(node.shape, node.name), node.params,
            batch * per_image, 0 if shares else batch * elements[node.name] * width,
            per_image, node.receptive_field,
        ))
    return rows


def _blocks(network: ir.Network, layers: list[LayerRow]) -> list[BlockRow]:
    """A subtotal for each path prefix that more than one layer shares, outermost first."""
    names = {instance.path: instance.block for instance in network.instances}
    children: dict[str, list[str]] = {}
    for path, block in names.items():
        children.setdefault(path.rpartition(".")[0], []).append(block)
    groups: dict[str, list[LayerRow]] = {}
    for row in layers:
        parts = row.path.split(".")
        for depth in range(1, len(parts)):
            groups.setdefault(".".join(parts[:depth]), []).append(row)
    blocks = []
    for path, rows in groups.items():
        if len(rows) < 2:
            continue
        kinds = set(children.get(path, ()))
        if path in names:
            block = names[path]
        elif len(kinds) == 1:
            block = f"{len(children[path])} x {kinds.pop()}"
        else:
            block = "group"
        blocks.append(BlockRow(
            path, block, path.count(".") + 1, len(rows), rows[-1].output,
            sum(r.params for r in rows), sum(r.macs for r in rows),
            sum(r.macs_per_image for r in rows), sum(r.activation_bytes for r in rows),
            rows[-1].receptive_field,
        ))
    return sorted(blocks, key=lambda b: b.depth)


def summary(spec: ir.Network | str | Path, *, batch: int | None = None, dtype: str = "fp32",
            optimizer: str = "sgd", input: str | None = None, device: str = "cpu",
            budget: int | str | None = None, **load_options: Any) -> Summary:
    """Summarise a network, a spec path or spec text at a batch size, dtype and optimizer.

    Without ``batch`` the figures are for one image and shapes show the batch as ``N``.
    """
    if isinstance(spec, ir.Network):
        network = spec
    else:
        from cnndsl.compiler import load

        network = load(spec, input=input, **load_options)
    given = batch is not None
    size = 1 if batch is None else batch
    inference = memory.peak_bytes(network, "inference", size, dtype, optimizer, device)
    training = memory.peak_bytes(network, "training", size, dtype, optimizer, device)
    answer = None
    if budget is not None:
        limit = (memory.parse_bytes(budget) if isinstance(budget, str)
                 else memory.checked_bytes(budget, budget))
        answer = Budget(
            limit,
            memory.largest_batch(network, "inference", limit, dtype, optimizer, device),
            memory.largest_batch(network, "training", limit, dtype, optimizer, device),
            memory.peak_bytes(network, "inference", 1, dtype, optimizer, device),
            memory.peak_bytes(network, "training", 1, dtype, optimizer, device),
        )
    layers = _layers(network, size, dtype)
    macs = sum(row.macs for row in layers)
    stored = memory.estimate(network, "inference", 1, dtype, optimizer, device)
    return Summary(
        network=network.name,
        inputs={name: ir.shape_str(network.node(name).shape) for name in network.inputs},
        batch=size, dtype=dtype, optimizer=optimizer,
        layers=layers,
        params=network.total_params, trainable_params=network.trainable_params,
        buffers=param_analysis.total_buffers(network),
        macs=macs, flops=2 * macs,
        inference_peak_bytes=inference, training_peak_bytes=training,
        budget=answer, batch_given=given,
        macs_per_image=sum(row.macs_per_image for row in layers),
        param_bytes=stored.weights, buffer_bytes=stored.buffers,
        blocks=_blocks(network, layers),
    )


__all__ = ["BlockRow", "Budget", "LayerRow", "Summary", "summary"]
