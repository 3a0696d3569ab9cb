"""Opsets: which ONNX opsets the installed onnx and onnxruntime support, the IR version each
declares, and the opsets at which operators that lowerings depend on appeared or changed."""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path

from cnndsl.files import atomic_write

MIN_OPSET = 11
SOFTMAX_ND_OPSET = 13  # before 13, Softmax flattened everything after the axis
HARDSWISH_OPSET = 14
REDUCE_AXES_INPUT_OPSET = 18
GELU_OPSET = 20
# The IR version that each opset first shipped with (onnx.helper.VERSION_TABLE), so that
# writing a model needs no onnx import; a newer opset asks onnx.helper.
IR_VERSIONS = {11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10,
               22: 10, 23: 11, 24: 12, 25: 13, 26: 13, 27: 13, 28: 14}


def _installed(package: str) -> str | None:
    """Where a package is installed and when it was written, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    try:
        return f"{spec.origin}:{os.stat(spec.origin).st_mtime_ns}"
    except OSError:
        return None


def cache_dir() -> Path:
    """Where cnndsl keeps facts about the installation: ``$CNNDSL_CACHE_DIR`` or ~/.cache."""
    if os.environ.get("CNNDSL_CACHE_DIR"):
        return Path(os.environ["CNNDSL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory: a cache that lasts until the next reboot
            base = tempfile.gettempdir()
    return Path(base) / "cnndsl"


def _query_opsets() -> tuple[int, int | None]:
    try:
        import onnx
    except ImportError:  # cnndsl encodes models itself; without onnx, trust its own table
        newest = max(IR_VERSIONS)
    else:
        newest = onnx.defs.onnx_opset_version()
    try:
        from onnxruntime.capi import _pybind_state as ort_state
    except ImportError:
        return newest, None
    try:
        kernels = ort_state.get_all_opkernel_def()
        runtime = max(k.version_range[0] for k in kernels if k.domain in ("", "ai.onnx"))
    except (AttributeError, ValueError):
        return newest, None
    return newest, runtime


def opset_limits() -> tuple[int, int | None]:
    """The newest opset that onnx knows and the newest that onnxruntime runs (None: no runtime).

    Asking onnxruntime means importing it and listing its kernels, a tenth of a second; the
    answer is cached on disk per installation of onnx and onnxruntime (their paths and
    modification times), so a reinstall asks again.
    """
    key = f"{_installed('onnx')}|{_installed('onnxruntime')}"
    cache = cache_dir() / "opsets.json"
    try:
        cached = json.loads(cache.read_text())
        if cached["key"] == key:
            return int(cached["onnx"]), cached["onnxruntime"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    newest, runtime = _query_opsets()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(cache, json.dumps({"key": key, "onnx": newest, "onnxruntime": runtime}))
    except OSError:
        pass  # a read-only home only costs the query next time
    return newest, runtime


def max_opset() -> int:
    """The newest opset that both onnx and the installed onnxruntime (when there is one) know."""
    newest, runtime = opset_limits()
    return newest if runtime is None else max(MIN_OPSET, min(newest, runtime))


def check_opset(opset: int | None) -> int:
    if opset is None:
        return max_opset()
    newest, _ = opset_limits()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset {opset} is outside the supported range {MIN_OPSET}..{newest}")
    return opset


def ir_version(opset: int) -> int:
    if opset in IR_VERSIONS:
        return IR_VERSIONS[opset]
    from onnx import helper

    return int(helper.find_min_ir_version_for([helper.make_opsetid("", opset)]))
