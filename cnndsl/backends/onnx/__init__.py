"""IR -> ONNX, built directly from the IR: never imports torch, and onnx only for ``to_onnx``.

Modules by job: ``opsets`` (what the installed onnx and onnxruntime support), ``weights`` (the
learnable state: seeded, or read from a checkpoint), ``fold`` (batch norm into convolutions),
``graph`` (the nodes being built and the helpers lowerings share), ``lowering`` (the per-kind
registry and the pass over a network), ``lowerings`` (each IR kind as ONNX nodes, one module per
family of :mod:`cnndsl.ops`), ``assembly`` (``build_onnx``: one model), ``writing`` (a
``ModelProto`` or files), ``wire`` (the ONNX messages as data and their protobuf encoding) and
``detect`` (YOLO decoding and NMS appended to a detector).

Initializer names are the PyTorch backend's ``state_dict`` keys (``layer1.0.conv1.weight``,
batch norm's ``running_mean`` ...), so weights move between the two by name. The graph is plain
data (:mod:`cnndsl.backends.onnx.wire`), encoded by cnndsl itself: a model is written to disk
straight from the weight arrays, and :func:`to_onnx` parses the same bytes into an
``onnx.ModelProto``.
"""

from __future__ import annotations

from cnndsl.backends.onnx import lowerings  # registers every kind's lowering
from cnndsl.backends.onnx.assembly import build_onnx, to_onnx
from cnndsl.backends.onnx.fold import fold_batchnorms
from cnndsl.backends.onnx.lowering import LOWERINGS, lowering
from cnndsl.backends.onnx.opsets import MIN_OPSET, cache_dir, max_opset, opset_limits
from cnndsl.backends.onnx.weights import parameter_specs, random_weights, read_weights
from cnndsl.backends.onnx.writing import as_proto, write_onnx

__all__ = ["LOWERINGS", "MIN_OPSET", "as_proto", "build_onnx", "cache_dir", "fold_batchnorms",
           "lowering", "lowerings", "max_opset", "opset_limits", "parameter_specs",
           "random_weights", "read_weights", "to_onnx", "write_onnx"]
