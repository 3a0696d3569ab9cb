"""Detection heads: ``box_head`` and ``detect_head`` are identities (their raw maps are outputs;
decoding is appended by :mod:`cnndsl.backends.onnx.detect`)."""

from __future__ import annotations

from cnndsl.backends.onnx.lowering import lowering
from cnndsl.backends.onnx.lowerings.tensor import lower_identity

lowering("box_head", "detect_head")(lower_identity)
