"""Checkpoint files in and out: ``.safetensors`` and ``.npz`` with numpy only, ``.pt``/``.pth``
through torch (``torch.load(weights_only=True)``, never a full unpickle).

A checkpoint is read into a :class:`Checkpoint`: its tensors by key in the file's order, and
where in the file they were found. Training scripts wrap the state dict in a container
(``{"state_dict": ...}``, ``{"model": ..., "optimizer": ..., "epoch": ...}``, ``{"ema": ...}``);
the first entry of :data:`CONTAINERS` that holds tensors is taken, at any depth up to
:data:`MAX_DEPTH`. safetensors files are parsed here (the format is a JSON header and raw
little-endian bytes), so reading one needs neither torch nor the ``safetensors`` package, and
the header is validated before any byte of data is trusted.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnndsl.diagnostics import CnnError, Code, Diagnostic, Span

# Entries that hold the state dict in the usual training containers, in order of preference:
# torch / Lightning / timm ("state_dict"), many scripts ("model_state_dict", "model"),
# Ultralytics and timm EMA copies ("ema", "model_ema", "state_dict_ema"), DDP wrappers.
CONTAINERS = ("state_dict", "model_state_dict", "model", "module", "net", "network", "ema",
              "model_ema", "state_dict_ema", "params", "weights")
MAX_DEPTH = 4
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit for the JSON header
ORDER_KEY = "cnndsl.order"  # safetensors metadata: the tensors' order (the format sorts keys)

_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
                       "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}
_NUMPY_DTYPES = {np.dtype(v).str: k for k, v in _SAFETENSORS_DTYPES.items() if k != "BOOL"}
_NUMPY_DTYPES[np.dtype("?").str] = "BOOL"


@dataclass(frozen=True)
class Checkpoint:
    """The tensors of a checkpoint file by key, in file order, and where they were found."""

    path: str
    tensors: dict[str, Any]
    entry: str = ""  # the container entry, e.g. "['model']"; "" for a bare state dict
    ordered: bool = True  # False for a safetensors file that does not record its order
    notes: tuple[str, ...] = field(default=())


def _io_error(path: str | Path, message: str) -> CnnError:
    return CnnError([Diagnostic(Code.IO, Span(file=str(path)), message)])


def read_checkpoint(path: str | Path) -> Checkpoint:
    """Read a ``.safetensors``, ``.npz``, ``.pt`` or ``.pth`` checkpoint; CnnError (io) if not."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            tensors, ordered = read_safetensors(path)
            return Checkpoint(str(path), tensors, ordered=ordered)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return Checkpoint(str(path), {key: archive[key] for key in archive.files})
        if suffix in (".pt", ".pth", ".ckpt", ".bin"):
            return _read_torch(path)
    except (OSError, ValueError, EOFError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise _io_error(path, f"cannot read weights {path}: {reason}") from None
    raise _io_error(path, f"weights file {path} is not .safetensors, .npz, .pt or .pth")


def read_safetensors(path: str | Path) -> tuple[dict[str, np.ndarray], bool]:
    """A safetensors file's arrays in recorded order, and whether an order was recorded."""
    with open(path, "rb") as file:
        head = file.read(8)
        if len(head) != 8:
            raise ValueError("not a safetensors file (shorter than its header size)")
        (size,) = struct.unpack("<Q", head)
        if size > MAX_HEADER_BYTES:
            raise ValueError(f"not a safetensors file (header of {size:,} bytes)")
        header = json.loads(file.read(size))
        data = np.fromfile(file, dtype=np.uint8)
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file (the header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    arrays = {key: _safetensors_array(key, entry, data) for key, entry in header.items()}
    order = metadata.get(ORDER_KEY) if isinstance(metadata, dict) else None
    if isinstance(order, str):
        keys = json.loads(order)
        if isinstance(keys, list) and sorted(keys) == sorted(arrays):
            return {key: arrays[key] for key in keys}, True
    return arrays, False


def _safetensors_array(key: str, entry: Any, data: np.ndarray) -> np.ndarray:
    try:
        dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not all(isinstance(n, int) and n >= 0 for n in (*shape, start, end)):
            raise TypeError
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"tensor {key!r} has a malformed header entry") from None
    if dtype == "BF16":  # numpy has no bfloat16: widen to float32 (the upper half of its bits)
        raw = _slice(key, data, start, end, 2 * math.prod(shape)).view("<u2")
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dtype not in _SAFETENSORS_DTYPES:
        raise ValueError(f"tensor {key!r} has dtype {dtype}, which cnndsl does not read")
    numpy_dtype = np.dtype(_SAFETENSORS_DTYPES[dtype])
    raw = _slice(key, data, start, end, numpy_dtype.itemsize * math.prod(shape))
    return raw.view(numpy_dtype).reshape(shape)


def _slice(key: str, data: np.ndarray, start: int, end: int, expected: int) -> np.ndarray:
    if end - start != expected or end > data.size:
        raise ValueError(f"tensor {key!r}: its data offsets {start}..{end} do not fit its shape "
                         f"or the file ({data.size:,} bytes of data)")
    return data[start:end]


def write_safetensors(arrays: Mapping[str, Any], path: str | Path) -> None:
    """Write arrays as safetensors (their order kept in the metadata); atomic."""
    from cnndsl.files import atomic_write

    header: dict[str, Any] = {"__metadata__": {ORDER_KEY: json.dumps(list(arrays))}}
    blobs: list[memoryview] = []
    offset = 0
    for key, value in arrays.items():
        array = np.asarray(value)
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        code = _NUMPY_DTYPES.get(little.dtype.str)
        if code is None:
            raise ValueError(f"tensor {key!r} has dtype {array.dtype}, which safetensors lacks")
        blob = memoryview(np.ascontiguousarray(little).reshape(-1).view(np.uint8).data)
        header[key] = {"dtype": code, "shape": list(array.shape),
                       "data_offsets": [offset, offset + blob.nbytes]}
        blobs.append(blob)
        offset += blob.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    atomic_write(path, [struct.pack("<Q", len(text)) + text, *blobs])


def write_checkpoint(arrays: Mapping[str, Any], path: str | Path) -> None:
    """Write a state dict as ``.safetensors``, ``.npz`` or (through torch) ``.pt``/``.pth``."""
    suffix = Path(path).suffix.lower()
    if suffix == ".safetensors":
        write_safetensors(arrays, path)
    elif suffix == ".npz":
        import io

        from cnndsl.files import atomic_write

        buffer = io.BytesIO()
        np.savez(buffer, **{key: np.asarray(value) for key, value in arrays.items()})  # type: ignore[arg-type]
        atomic_write(path, buffer.getvalue())
    elif suffix in (".pt", ".pth"):
        import io

        torch = _torch(path)
        from cnndsl.files import atomic_write

        buffer = io.BytesIO()
        # asarray(order="C"), not ascontiguousarray: that makes a 0-d counter 1-d
        torch.save({key: torch.from_numpy(np.require(np.asarray(value, order="C"),
                                                     requirements="W"))
                    for key, value in arrays.items()}, buffer)
        atomic_write(path, buffer.getvalue())
    else:
        raise ValueError(f"cannot write {path}: give a .safetensors, .npz or .pt file")


def _torch(path: str | Path) -> Any:
    try:
        import torch
    except ImportError:
        raise _io_error(path, f"reading or writing {Path(path).name} needs PyTorch "
                              "(install cnndsl[torch]), or use .safetensors / .npz") from None
    return torch


def _read_torch(path: Path) -> Checkpoint:
    torch = _torch(path)
    import pickle

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # weights_only refuses pickled Python objects: Ultralytics saves its model object
        raise _io_error(path, f"{path} holds pickled Python objects (an Ultralytics checkpoint "
                              "stores its model object), which cnndsl does not unpickle; "
                              "re-save its state dict where you trust the file: "
                              "torch.save(torch.load(F, weights_only=False)['model'].float()"
                              ".state_dict(), 'weights.pt')") from None
    except RuntimeError as error:  # torch's "invalid header or archive is corrupted" etc.
        raise ValueError(str(error).splitlines()[0]) from None
    found = _find_state(loaded, torch, "", 0)
    if found is None:
        entries = (", ".join(repr(k) for k in list(loaded)[:8])
                   if isinstance(loaded, Mapping) else type(loaded).__name__)
        raise _io_error(path, f"{path} holds no state dict (found {entries})")
    entry, state = found
    tensors = {key: _to_numpy(value) for key, value in state.items()
               if isinstance(value, torch.Tensor)}
    return Checkpoint(str(path), tensors, entry=entry)


def _to_numpy(tensor: Any) -> np.ndarray:
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()  # type: ignore[no-any-return]


def is_state_dict(value: Any, tensor_type: Any = np.ndarray) -> bool:
    """A non-empty mapping of string keys to tensors (torch tensors or numpy arrays)."""
    return (isinstance(value, Mapping) and len(value) > 0
            and all(isinstance(k, str) for k in value)
            and all(isinstance(v, tensor_type) for v in value.values()))


def _find_state(value: Any, torch: Any, entry: str,
                depth: int) -> tuple[str, Mapping[str, Any]] | None:
    if is_state_dict(value, torch.Tensor):
        return entry, value
    if not isinstance(value, Mapping) or depth >= MAX_DEPTH:
        return None
    for key in _containers(value):
        found = _find_state(value[key], torch, f"{entry}[{key!r}]", depth + 1)
        if found is not None:
            return found
    return None


def _containers(value: Mapping[Any, Any]) -> Iterator[str]:
    for key in CONTAINERS:
        if key in value and value[key] is not None:
            yield key
