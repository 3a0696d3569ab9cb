"""Input normalisation shared by the detection modules (numpy only, torch never imported)."""

from __future__ import annotations

from typing import Any

import numpy as np


def to_numpy(x: Any, dtype: Any = np.float64) -> np.ndarray:
    """Convert an array-like or a torch tensor to a numpy array of ``dtype``."""
    # Duck-typing on ``detach`` accepts torch tensors without importing torch here.
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def as_boxes(x: Any, name: str = "boxes") -> np.ndarray:
    """Convert ``x`` to a float64 array of shape (..., 4); an empty input becomes (0, 4)."""
    boxes = to_numpy(x)
    # ``np.asarray([])`` has shape (0,): treat it as "no boxes" rather than an error.
    if boxes.size == 0 and boxes.ndim == 1:
        return boxes.reshape(0, 4)
    if boxes.ndim == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (..., 4), got {boxes.shape}")
    return boxes
