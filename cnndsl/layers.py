"""The layer words of the language, collected from the op definitions in :mod:`cnndsl.ops`.

Each word (``conv``, ``bn``, ``maxpool`` ...) is described beside the kind it builds, as a
:class:`~cnndsl.ops.words.Layer`: positional order, typed parameters with defaults, flag words
and the builder that turns bound arguments into IR nodes. This module gathers them in the
registry's order, with the words that take tensors (``add(a, b)``) and those that take a body.
"""

from __future__ import annotations

from cnndsl import ir
from cnndsl.ops import KINDS, REGISTRY
from cnndsl.ops.words import (
    REQUIRED,
    ArgumentError,
    Builder,
    Built,
    Context,
    Layer,
    Param,
    ScaleLiteral,
    SizeLiteral,
    Word,
    anchors,
    boolean,
    choice,
    non_negative_int,
    non_negative_pair,
    number,
    padding,
    positive_int,
    positive_pair,
    probability,
    scale,
)

LAYERS: dict[str, Layer] = {layer.word: layer for cls in KINDS for layer in cls.words}

# Words that take tensors rather than numbers: add(a, b), mul(a, b), concat(a, b).
TENSOR_OPS: dict[str, str] = {cls.tensor_word: cls.kind for cls in KINDS if cls.tensor_word}

# Words that take a braced body.
COMPOSITES = ("residual", "concat", "scale", "se")

NODE_TYPES: dict[str, type[ir.Node]] = dict(REGISTRY)

__all__ = [
    "COMPOSITES", "LAYERS", "NODE_TYPES", "REQUIRED", "TENSOR_OPS", "ArgumentError", "Builder",
    "Built", "Context", "Layer", "Param", "ScaleLiteral", "SizeLiteral", "Word", "anchors",
    "boolean", "choice", "non_negative_int", "non_negative_pair", "number", "padding",
    "positive_int", "positive_pair", "probability", "scale",
]
