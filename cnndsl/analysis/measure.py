"""Measure what the memory estimate predicts: PyTorch's own accounting of a real run.

For a module and an input this runs, on the CPU (or CUDA when asked and available):
- inference: ``model.eval()`` under ``torch.no_grad()``, one forward;
- training: one steady-state step (a first step creates the optimizer state and is not
  measured; then ``zero_grad(set_to_none=True)``, forward, loss = sum of the outputs' sums,
  backward, ``optimizer.step()``), the same step that :mod:`cnndsl.analysis.memory` models,

and records the peak that ``torch.distributed._tools.mem_tracker.MemTracker`` reports (live
tensor storages, including weights, gradients, optimizer state and the input) and, for
training, the bytes of the tensors saved for backward (unique storages seen by
``torch.autograd.graph.saved_tensors_hooks``, parameters and buffers excluded). On CUDA it also
reports ``torch.cuda.max_memory_allocated`` (the caching allocator's view: rounding, workspaces).

torch is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

_TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass
class Measurement:
    """Measured bytes of one run."""

    peak: int
    saved: int = 0
    cuda_max_allocated: int | None = None


def _outputs(result: Any) -> list[Any]:
    import torch

    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return [t for value in result.values() for t in _outputs(value)]
    if isinstance(result, list | tuple):
        return [t for value in result for t in _outputs(value)]
    return []


def _loss(result: Any) -> Any:
    """The sum of every output's sum: its gradient is a broadcast view, so it costs nothing."""
    total = None
    for tensor in _outputs(result):
        part = tensor.sum()
        total = part if total is None else total + part
    return total


def make_optimizer(module: Any, optimizer: str) -> Any:
    """The torch optimizer for a name (sgd, momentum, adam, adamw) with default settings."""
    import torch

    params = [p for p in module.parameters() if p.requires_grad]
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=1e-3)
    if optimizer == "momentum":
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=1e-4)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=1e-4)
    raise ValueError(f"unknown optimizer '{optimizer}'")


def _peak(tracker: Any, device: Any) -> int:
    snapshot = tracker.get_tracker_snapshot("peak")
    for dev, values in snapshot.items():
        if dev.type == device.type:
            return int(values["Total"])
    return 0


def _prepare(module: Any, inputs: tuple[Any, ...], dtype: str, device: str) -> tuple[Any, ...]:
    import torch

    module.to(device)
    cast = getattr(torch, _TORCH_DTYPES[dtype]) if dtype in _TORCH_DTYPES else torch.float32
    if dtype in _TORCH_DTYPES:
        module.to(cast)
    return tuple(t.to(device=device, dtype=cast) for t in inputs)


def _autocast(dtype: str, device: str) -> Any:
    import contextlib

    import torch

    if dtype != "mixed":
        return contextlib.nullcontext()
    half = torch.bfloat16 if device == "cpu" else torch.float16
    return torch.autocast(device_type=device, dtype=half)


def measure_inference(module: Any, *inputs: Any, dtype: str = "fp32",
                      device: str = "cpu") -> Measurement:
    """Peak of one forward in eval mode without autograd."""
    import torch
    from torch.distributed._tools.mem_tracker import MemTracker

    inputs = _prepare(module, inputs, dtype, device)
    module.eval()
    gc.collect()
    tracker = MemTracker()
    tracker.track_external(module, *inputs)
    cuda = _cuda_reset(device)
    with torch.no_grad(), tracker, _autocast(dtype, device):
        module(*inputs)  # the result is dropped as soon as the call returns
    return Measurement(_peak(tracker, torch.device(device)), 0, _cuda_peak(cuda))


def _step(module: Any, optimizer: Any, inputs: tuple[Any, ...], dtype: str, device: str) -> None:
    with _autocast(dtype, device):
        loss = _loss(module(*inputs))
    loss.backward()
    optimizer.step()


def measure_training(module: Any, *inputs: Any, dtype: str = "fp32", optimizer: str = "sgd",
                     device: str = "cpu") -> Measurement:
    """Peak and saved-for-backward bytes of one steady-state training step."""
    import torch
    from torch.distributed._tools.mem_tracker import MemTracker

    inputs = _prepare(module, inputs, dtype, device)
    module.train()
    opt = make_optimizer(module, optimizer)
    if optimizer != "sgd":  # plain SGD keeps no state: its first step is already steady
        _step(module, opt, inputs, dtype, device)  # creates the optimizer state
        opt.zero_grad(set_to_none=True)
    gc.collect()
    state = [*module.parameters(), *module.buffers()]
    parameters = {t.untyped_storage().data_ptr() for t in state}
    saved: dict[int, int] = {}

    def pack(tensor: Any) -> Any:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    tracker = MemTracker()
    tracker.track_external(module, opt, *inputs)
    cuda = _cuda_reset(device)
    with tracker, torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        _step(module, opt, inputs, dtype, device)
    opt.zero_grad(set_to_none=True)
    return Measurement(_peak(tracker, torch.device(device)), sum(saved.values()),
                       _cuda_peak(cuda))


def _cuda_reset(device: str) -> bool:
    import torch

    if device != "cuda" or not torch.cuda.is_available():
        return False
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    return True


def _cuda_peak(active: bool) -> int | None:
    import torch

    if not active:
        return None
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated())


def measure(module: Any, *inputs: Any, kind: str = "training", dtype: str = "fp32",
            optimizer: str = "sgd", device: str = "cpu") -> Measurement:
    """Measure inference or one training step of ``module`` on ``inputs``."""
    if kind == "inference":
        return measure_inference(module, *inputs, dtype=dtype, device=device)
    if kind == "training":
        return measure_training(module, *inputs, dtype=dtype, optimizer=optimizer, device=device)
    raise ValueError(f"unknown kind '{kind}'; use inference or training")


__all__ = ["Measurement", "make_optimizer", "measure", "measure_inference", "measure_training"]
