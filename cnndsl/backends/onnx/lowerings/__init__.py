"""Each IR kind as ONNX nodes, with PyTorch's semantics exactly; one module per family of
:mod:`cnndsl.ops`, each registering its kinds with ``@lowering``.

Ceil-mode pooling (as explicit end padding), adaptive pooling with uneven windows and even-sized
LRN windows, which ONNX's own operators place differently, are decomposed, as are the
activations and norms that the lowest supported opset lacks. Importing this package registers
every lowering.
"""

from cnndsl.backends.onnx.lowerings import activation, conv, heads, linear, norm, pool, tensor

__all__ = ["activation", "conv", "heads", "linear", "norm", "pool", "tensor"]
