"""cnndsl: a declarative architecture language and compiler for convolutional networks.

``load`` and ``check`` read a spec into the checked IR; ``to_torch``, ``to_onnx`` and
``summary`` are imported on first use, so that checking never imports torch or onnx.
"""

from __future__ import annotations

from typing import Any

from cnndsl.compiler import CheckResult, check, load
from cnndsl.diagnostics import CnnError, Diagnostic

__version__ = "0.1.0"

__all__ = [
    "CheckResult",
    "CnnError",
    "Diagnostic",
    "__version__",
    "check",
    "load",
    "load_weights",
    "summary",
    "to_onnx",
    "to_torch",
]

_LAZY = {
    "to_torch": ("cnndsl.backends.torch.runtime", "to_torch"),
    "load_weights": ("cnndsl.backends.torch.runtime", "load_weights"),
    "to_onnx": ("cnndsl.backends.onnx", "to_onnx"),
    "summary": ("cnndsl.analysis.summary", "summary"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'cnndsl' has no attribute {name!r}")
