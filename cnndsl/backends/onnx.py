"""IR -> ONNX, built directly from the IR: never imports torch, and onnx only for ``to_onnx``.

Each IR kind has one lowering in ``LOWERINGS``. Node names are the spec's paths (a lowering that
needs several ONNX nodes names the last one by the path and its helpers ``path/what``); tensor
names are node names; initializer names are the PyTorch backend's ``state_dict`` keys
(``layer1.0.conv1.weight``, batch norm's ``running_mean`` ...), so weights move between the two
by name. Constants that are not weights (shapes, scales, clip bounds) are ``Constant`` nodes, so
the initializers are exactly the learnable state. Lowerings reproduce PyTorch's semantics
exactly, including ceil-mode pooling (as explicit end padding), adaptive pooling with uneven
windows and even-sized LRN windows, which ONNX's own operators place differently.

The graph is plain data (:mod:`cnndsl.backends.onnx_wire`), encoded by cnndsl itself: a model is
written to disk straight from the weight arrays, and :func:`to_onnx` parses the same bytes into
an ``onnx.ModelProto``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import tempfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnndsl import ir
from cnndsl.backends import onnx_wire as wire
from cnndsl.diagnostics import CnnError, Code, Diagnostic, Reporter, Span
from cnndsl.files import atomic_write, atomic_write_all
from cnndsl.symbolic import dim_str

if TYPE_CHECKING:
    import onnx

MIN_OPSET = 11
SOFTMAX_ND_OPSET = 13  # before 13, Softmax flattened everything after the axis
HARDSWISH_OPSET = 14
REDUCE_AXES_INPUT_OPSET = 18
GELU_OPSET = 20
FLOAT = wire.FLOAT
PROTOBUF_LIMIT = 2**31 - 1  # protobuf parses no message of 2 GiB or more
# The IR version that each opset first shipped with (onnx.helper.VERSION_TABLE), so that
# writing a model needs no onnx import; a newer opset asks onnx.helper.
IR_VERSIONS = {11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10,
               22: 10, 23: 11, 24: 12, 25: 13, 26: 13, 27: 13, 28: 14}


class _Unsupported(Exception):
    """A node that has no lowering under the chosen options; becomes a positioned diagnostic."""

    def __init__(self, message: str, *notes: str):
        super().__init__(message)
        self.message = message
        self.notes = notes


# opset ------------------------------------------------------------------------------------------
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


def _check_opset(opset: int | None) -> int:
    if opset is None:
        return max_opset()
    newest, _ = opset_limits()
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset {opset} is outside the supported range {MIN_OPSET}..{newest}")
    return opset


def _ir_version(opset: int) -> int:
    if opset in IR_VERSIONS:
        return IR_VERSIONS[opset]
    from onnx import helper

    return int(helper.find_min_ir_version_for([helper.make_opsetid("", opset)]))


# parameters -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamSpec:
    """One learnable tensor or buffer: its state_dict key, shape and default initialisation."""

    key: str
    shape: tuple[int, ...]
    init: str  # "normal" (Kaiming with fan_out), "uniform" (bound 1/sqrt(fan)), "ones", "zeros"
    fan: int = 1


# How a state's initialisation is drawn here (see _initial_value and random_weights).
_INITS = {"kaiming_normal": "normal", "kaiming_uniform": "uniform", "uniform": "uniform",
          "ones": "ones", "zeros": "zeros"}


def parameter_specs(network: ir.Network) -> list[ParamSpec]:
    """Every learnable tensor and buffer of the network, in the PyTorch backend's order.

    From each kind's state (``Node.state``); integer counters (batch norm's
    ``num_batches_tracked``) have no place in an ONNX model and are left out.
    """
    return [ParamSpec(f"{node.name}.{state.name}", state.shape, _INITS[state.init], state.fan)
            for node in network.nodes for state in node.state() if state.dtype == "float32"]


def _initial_value(spec: ParamSpec, seed: int) -> np.ndarray:
    if spec.init in ("ones", "zeros"):
        return (np.ones if spec.init == "ones" else np.zeros)(spec.shape, np.float32)
    # Seeding per key keeps a tensor's values when other layers are added or removed.
    rng = np.random.default_rng([seed, zlib.crc32(spec.key.encode())])
    bound = math.sqrt(6.0 / spec.fan) if spec.init == "normal" else 1.0 / math.sqrt(spec.fan)
    values = rng.random(spec.shape, dtype=np.float32)  # [0, 1), then [-bound, bound)
    values -= np.float32(0.5)
    values *= np.float32(2 * bound)
    return values


def random_weights(network: ir.Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded initialisation with the PyTorch backend's variances; one stream per key.

    Convolutions draw uniformly with the variance of the torch backend's Kaiming normal
    (bound sqrt(6 / fan_out)): uniform floats are several times cheaper to draw than normals,
    and numpy draws them without the GIL, so threads share the work. Both matter for a cold
    ``cnndsl compile`` of 25M parameters; the values depend only on the seed and the key.
    """
    specs = parameter_specs(network)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(_initial_value, spec, seed) for spec in specs]
        weights: dict[str, np.ndarray] = {}
        for spec, future in zip(specs, futures, strict=True):
            try:
                weights[spec.key] = future.result()
            except (MemoryError, ValueError):  # numpy: "array is too big" or out of memory
                for pending in futures:
                    pending.cancel()
                node = network.node(spec.key.rsplit(".", 1)[0])
                size = math.prod(spec.shape) * 4 / 1e9
                message = (f"cannot allocate {spec.key}: {' x '.join(map(str, spec.shape))} "
                           f"floats ({size:,.1f} GB)")
                raise CnnError([Diagnostic(Code.LIMIT, node.span, message)]) from None
    return weights


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays by key from a checkpoint file (see :func:`cnndsl.weights.read_checkpoint`)."""
    from cnndsl.weights import read_checkpoint

    return read_checkpoint(path).tensors


def _output_channel_scale(conv: ir.Conv | ir.ConvTranspose, scale: np.ndarray,
                          weight: np.ndarray) -> np.ndarray:
    """``weight`` with each output channel's slice multiplied by ``scale``."""
    if isinstance(conv, ir.Conv):  # (out, in / groups, kh, kw)
        return weight * scale[:, None, None, None]
    # (in, out / groups, kh, kw): group g's inputs make outputs g * out/groups ...
    groups, (inputs, per_group, kh, kw) = conv.groups, weight.shape
    grouped = weight.reshape(groups, inputs // groups, per_group, kh, kw)
    return (grouped * scale.reshape(groups, 1, per_group, 1, 1)).reshape(weight.shape)


def fold_batchnorms(network: ir.Network, weights: dict[str, np.ndarray]) -> dict[str, str]:
    """Fold each batch norm after a (transposed) convolution read by nothing else into it.

    Rewrites ``weights`` in place (the convolution gains a bias) and returns batch norm ->
    convolution names.
    """
    consumers = network.consumers()
    outputs = set(network.outputs.values())
    nodes = network.by_name()
    folded: dict[str, str] = {}
    for node in network.nodes:
        if not isinstance(node, ir.BatchNorm) or len(node.inputs) != 1:
            continue
        conv = nodes.get(node.inputs[0])
        if not isinstance(conv, ir.Conv | ir.ConvTranspose):
            continue
        if consumers[conv.name] != [node.name] or conv.name in outputs:
            continue
        if len(node.shape or ()) != 3:
            continue
        bn = node.name
        std = np.sqrt(weights[f"{bn}.running_var"] + np.float32(node.eps))
        scale = weights[f"{bn}.weight"] / std
        bias = weights.get(f"{conv.name}.bias", np.zeros(conv.out_channels, np.float32))
        weights[f"{conv.name}.weight"] = _output_channel_scale(
            conv, scale, weights[f"{conv.name}.weight"]).astype(np.float32)
        weights[f"{conv.name}.bias"] = (
            (bias - weights[f"{bn}.running_mean"]) * scale + weights[f"{bn}.bias"]
        ).astype(np.float32)
        for suffix in ("weight", "bias", "running_mean", "running_var"):
            del weights[f"{bn}.{suffix}"]
        folded[bn] = conv.name
    return folded


# graph building ---------------------------------------------------------------------------------
@dataclass
class _Graph:
    network: ir.Network
    opset: int
    weights: dict[str, np.ndarray]
    folded: dict[str, str]
    nodes: list[wire.Node] = field(default_factory=list)

    def tensor(self, name: str) -> str:
        """The ONNX tensor that holds IR tensor ``name`` (a folded batch norm is its conv)."""
        return self.folded.get(name, name)

    def inputs(self, node: ir.Node) -> list[str]:
        return [self.tensor(name) for name in node.inputs]

    def emit(self, op: str, inputs: list[str], output: str, name: str, span: Span | None,
             **attributes: Any) -> str:
        doc = "" if span is None else str(span)
        self.nodes.append(wire.Node(op, inputs, [output], name, attributes, doc))
        return output

    def const(self, name: str, values: Any, dtype: type = np.int64) -> str:
        tensor = wire.Tensor(name, np.asarray(values, dtype=dtype))
        return self.emit("Constant", [], name, name, None, value=tensor)

    def weight(self, key: str) -> str | None:
        return key if key in self.weights else None


def _fixed(node: ir.Node, dims: tuple[Any, ...], what: str) -> tuple[int, ...]:
    if not all(isinstance(d, int) for d in dims):
        raise _Unsupported(f"{what} needs a fixed input size in ONNX, but it is "
                           f"{' x '.join(dim_str(d) for d in dims)}",
                           "bind the sizes, e.g. --input H=224,W=224")
    return tuple(int(d) for d in dims)


def _shape(graph: _Graph, name: str) -> tuple[Any, ...]:
    shape = graph.network.node(name).shape
    assert shape is not None
    return tuple(shape)


def _lower_conv(g: _Graph, node: ir.Conv) -> None:
    inputs = [*g.inputs(node), f"{node.name}.weight"]
    bias = g.weight(f"{node.name}.bias")
    if bias:
        inputs.append(bias)
    g.emit("Conv", inputs, node.name, node.name, node.span, kernel_shape=list(node.kernel),
           strides=list(node.stride), pads=list(node.padding), dilations=list(node.dilation),
           group=node.groups)


def _lower_conv_transpose(g: _Graph, node: ir.ConvTranspose) -> None:
    inputs = [*g.inputs(node), f"{node.name}.weight"]
    bias = g.weight(f"{node.name}.bias")
    if bias:
        inputs.append(bias)
    ph, pw = node.padding
    g.emit("ConvTranspose", inputs, node.name, node.name, node.span,
           kernel_shape=list(node.kernel), strides=list(node.stride), pads=[ph, pw, ph, pw],
           output_padding=list(node.output_padding), dilations=list(node.dilation),
           group=node.groups)


def _lower_batchnorm(g: _Graph, node: ir.BatchNorm) -> None:
    if node.name in g.folded:
        return
    keys = [f"{node.name}.{s}" for s in ("weight", "bias", "running_mean", "running_var")]
    g.emit("BatchNormalization", [*g.inputs(node), *keys], node.name, node.name, node.span,
           epsilon=node.eps)


def _lower_groupnorm(g: _Graph, node: Any) -> None:
    # GroupNormalization needs opset 18 (and changed meaning at 21); from opset 11 on: view as
    # N x G x rest, InstanceNormalization (unit scale, zero shift per group), view back,
    # then the per-channel scale and shift, broadcast over the positions.
    (x,) = g.inputs(node)
    name, span, groups = node.name, node.span, node.groups
    rank = len(_shape(g, node.inputs[0]))
    grouped = g.emit("Reshape", [x, g.const(f"{name}/groups", [0, groups, -1])],
                     f"{name}/grouped", f"{name}/grouped", span)
    normed = g.emit("InstanceNormalization",
                    [grouped, g.const(f"{name}/one", np.ones(groups), np.float32),
                     g.const(f"{name}/zero", np.zeros(groups), np.float32)],
                    f"{name}/normed", f"{name}/normed", span, epsilon=node.eps)
    shape = g.emit("Shape", [x], f"{name}/shape", f"{name}/shape", span)
    back = g.emit("Reshape", [normed, shape], f"{name}/ungrouped", f"{name}/ungrouped", span)
    per_channel = g.const(f"{name}/per_channel", [node.channels] + [1] * (rank - 1))
    scale = g.emit("Reshape", [f"{name}.weight", per_channel], f"{name}/scale",
                   f"{name}/scale", span)
    shift = g.emit("Reshape", [f"{name}.bias", per_channel], f"{name}/shift", f"{name}/shift",
                   span)
    scaled = g.emit("Mul", [back, scale], f"{name}/scaled", f"{name}/scaled", span)
    g.emit("Add", [scaled, shift], name, name, span)


def _hardsigmoid(g: _Graph, x: str, output: str, name: str, span: Span | None) -> str:
    # torch: relu6(x + 3) / 6 == clip(x / 6 + 1/2, 0, 1)
    return g.emit("HardSigmoid", [x], output, name, span, alpha=1.0 / 6.0, beta=0.5)


def _lower_activation(g: _Graph, node: ir.Activation) -> None:
    (x,) = g.inputs(node)
    name, span, function = node.name, node.span, node.function
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
    if function in simple:
        g.emit(simple[function], [x], name, name, span)
    elif function == "leaky_relu":
        g.emit("LeakyRelu", [x], name, name, span, alpha=node.negative_slope)
    elif function == "relu6":
        low = g.const(f"{name}/min", 0.0, np.float32)
        high = g.const(f"{name}/max", 6.0, np.float32)
        g.emit("Clip", [x, low, high], name, name, span)
    elif function == "hardsigmoid":
        _hardsigmoid(g, x, name, name, span)
    elif function == "hardswish":
        if g.opset >= HARDSWISH_OPSET:
            g.emit("HardSwish", [x], name, name, span)
        else:
            gate = _hardsigmoid(g, x, f"{name}/gate", f"{name}/gate", span)
            g.emit("Mul", [x, gate], name, name, span)
    elif function == "silu":
        gate = g.emit("Sigmoid", [x], f"{name}/sigmoid", f"{name}/sigmoid", span)
        g.emit("Mul", [x, gate], name, name, span)
    elif function == "gelu":
        if g.opset >= GELU_OPSET:
            g.emit("Gelu", [x], name, name, span, approximate="none")
            return
        # exact form: x * (1 + erf(x / sqrt 2)) / 2
        scaled = g.emit("Div", [x, g.const(f"{name}/sqrt2", math.sqrt(2.0), np.float32)],
                        f"{name}/scaled", f"{name}/scaled", span)
        erf = g.emit("Erf", [scaled], f"{name}/erf", f"{name}/erf", span)
        one = g.emit("Add", [erf, g.const(f"{name}/one", 1.0, np.float32)], f"{name}/onep",
                     f"{name}/onep", span)
        half = g.emit("Mul", [x, g.const(f"{name}/half", 0.5, np.float32)], f"{name}/halfx",
                      f"{name}/halfx", span)
        g.emit("Mul", [half, one], name, name, span)
    else:  # pragma: no cover - the IR's Literal lists every function
        raise _Unsupported(f"activation {function} has no ONNX lowering")


def _lower_softmax(g: _Graph, node: ir.Softmax) -> None:
    rank = len(_shape(g, node.inputs[0])) + 1
    if g.opset < SOFTMAX_ND_OPSET and node.axis != rank - 1:
        raise _Unsupported(
            f"softmax over axis {node.axis} of a rank-{rank} tensor needs opset "
            f"{SOFTMAX_ND_OPSET} (ONNX Softmax before 13 flattens the trailing axes)",
            f"use --opset {SOFTMAX_ND_OPSET} or newer")
    g.emit("Softmax", g.inputs(node), node.name, node.name, node.span, axis=node.axis)


def _ceil_extra(size: int, out: int, kernel: int, stride: int, pad: int) -> int:
    """End padding beyond ``pad`` that makes floor-mode pooling produce ``out`` windows."""
    return max(0, (out - 1) * stride + kernel - size - 2 * pad)


def _lower_pool(g: _Graph, node: ir.Pool) -> None:
    (x,) = g.inputs(node)
    ph, pw = node.padding
    kernel, stride = list(node.kernel), list(node.stride)
    extra_h = extra_w = 0
    if node.ceil_mode:
        # ONNX runtimes disagree on ceil mode's last window; explicit end padding is exact.
        _, h, w = _fixed(node, _shape(g, node.inputs[0]), "ceil-mode pooling")
        _, oh, ow = _fixed(node, tuple(node.shape or ()), "ceil-mode pooling")
        extra_h = _ceil_extra(h, oh, kernel[0], stride[0], ph)
        extra_w = _ceil_extra(w, ow, kernel[1], stride[1], pw)
    pads = [ph, pw, ph + extra_h, pw + extra_w]
    if node.mode == "max":
        g.emit("MaxPool", [x], node.name, node.name, node.span, kernel_shape=kernel,
               strides=stride, pads=pads)
        return
    if not (extra_h or extra_w):
        g.emit("AveragePool", [x], node.name, node.name, node.span, kernel_shape=kernel,
               strides=stride, pads=pads, count_include_pad=int(node.count_include_pad))
        return
    # torch counts the declared padding but not the ceil-mode overhang: pad with zeros first,
    # then average without counting the overhang.
    if node.count_include_pad and (ph or pw):
        pad_amounts = g.const(f"{node.name}/pads", [0, 0, ph, pw, 0, 0, ph, pw])
        x = g.emit("Pad", [x, pad_amounts], f"{node.name}/padded", f"{node.name}/pad",
                   node.span)
        pads = [0, 0, extra_h, extra_w]
    g.emit("AveragePool", [x], node.name, node.name, node.span, kernel_shape=kernel,
           strides=stride, pads=pads, count_include_pad=0)


def _lower_global_pool(g: _Graph, node: ir.GlobalPool) -> None:
    op = "GlobalMaxPool" if node.mode == "max" else "GlobalAveragePool"
    g.emit(op, g.inputs(node), node.name, node.name, node.span)


def _adaptive_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive windows: [floor(i*size/out), ceil((i+1)*size/out))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _averaging_matrix(size: int, out: int) -> np.ndarray:
    matrix = np.zeros((out, size), np.float32)
    for i, (start, end) in enumerate(_adaptive_bounds(size, out)):
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def _reduce(g: _Graph, op: str, x: str, axes: list[int], output: str, span: Span,
            keepdims: int = 1) -> str:
    if g.opset >= REDUCE_AXES_INPUT_OPSET:
        return g.emit(op, [x, g.const(f"{output}/axes", axes)], output, output, span,
                      keepdims=keepdims)
    return g.emit(op, [x], output, output, span, axes=axes, keepdims=keepdims)


def _lower_adaptive_pool(g: _Graph, node: ir.AdaptivePool) -> None:
    (x,) = g.inputs(node)
    _, h, w = _fixed(node, _shape(g, node.inputs[0]), "adaptive pooling")
    oh, ow = node.output_size
    name, span = node.name, node.span
    if h % oh == 0 and w % ow == 0:
        op = "MaxPool" if node.mode == "max" else "AveragePool"
        kernel = [h // oh, w // ow]
        g.emit(op, [x], name, name, span, kernel_shape=kernel, strides=kernel)
        return
    if node.mode == "avg":
        # Uneven windows: a mean over a rectangle is rows @ x @ cols^T, both constant.
        cols = g.const(f"{name}/cols", _averaging_matrix(w, ow).T, np.float32)
        rows = g.const(f"{name}/rows", _averaging_matrix(h, oh), np.float32)
        across = g.emit("MatMul", [x, cols], f"{name}/across", f"{name}/across", span)
        g.emit("MatMul", [rows, across], name, name, span)
        return
    # Uneven max windows: a maximum over a rectangle is a maximum over rows of column maxima.
    for axis, size, out in ((2, h, oh), (3, w, ow)):
        pieces = []
        for i, (start, end) in enumerate(_adaptive_bounds(size, out)):
            part = f"{name}/axis{axis}_{i}"
            sliced = g.emit("Slice", [x, g.const(f"{part}/starts", [start]),
                                      g.const(f"{part}/ends", [end]),
                                      g.const(f"{part}/axes", [axis])],
                            f"{part}/slice", f"{part}/slice", span)
            pieces.append(_reduce(g, "ReduceMax", sliced, [axis], f"{part}/max", span))
        output = name if axis == 3 else f"{name}/rows"
        x = g.emit("Concat", pieces, output, output, span, axis=axis)


def _lower_channel_pool(g: _Graph, node: ir.ChannelPool) -> None:
    (x,) = g.inputs(node)
    c, h, w = _shape(g, node.inputs[0])
    name, span, k = node.name, node.span, node.kernel
    if isinstance(h, int) and isinstance(w, int):
        target = g.const(f"{name}/shape", [0, c // k, k, h, w])
    else:
        # Symbolic sizes: take H and W from the runtime shape.
        shape = g.emit("Shape", [x], f"{name}/input_shape", f"{name}/input_shape", span)
        spatial = g.emit("Slice", [shape, g.const(f"{name}/from", [2]),
                                   g.const(f"{name}/to", [4])],
                         f"{name}/spatial", f"{name}/spatial", span)
        target = g.emit("Concat", [g.const(f"{name}/head", [0, c // k, k]), spatial],
                        f"{name}/shape", f"{name}/shape", span, axis=0)
    grouped = g.emit("Reshape", [x, target], f"{name}/grouped", f"{name}/grouped", span)
    _reduce(g, "ReduceMax", grouped, [2], name, span, keepdims=0)


def _lower_lrn(g: _Graph, node: ir.LRN) -> None:
    (x,) = g.inputs(node)
    name, span, size = node.name, node.span, node.size
    if size % 2:
        # ONNX LRN divides alpha by size and centres the window as torch does for odd sizes.
        g.emit("LRN", [x], name, name, span, size=size, alpha=node.alpha, beta=node.beta,
               bias=node.k)
        return
    # Even windows: torch's reaches size//2 back and (size-1)//2 forward, ONNX's the reverse.
    # Sum the squares over torch's window with a constant banded 1x1 convolution.
    channels = _shape(g, node.inputs[0])[0]
    assert isinstance(channels, int)
    band = np.zeros((channels, channels, 1, 1), np.float32)
    for c in range(channels):
        band[c, max(0, c - size // 2): c + (size - 1) // 2 + 1, 0, 0] = node.alpha / size
    squared = g.emit("Mul", [x, x], f"{name}/squared", f"{name}/squared", span)
    summed = g.emit("Conv", [squared, g.const(f"{name}/window", band, np.float32)],
                    f"{name}/window_sum", f"{name}/window_sum", span, kernel_shape=[1, 1])
    base = g.emit("Add", [summed, g.const(f"{name}/k", node.k, np.float32)], f"{name}/base",
                  f"{name}/base", span)
    divisor = g.emit("Pow", [base, g.const(f"{name}/beta", node.beta, np.float32)],
                     f"{name}/divisor", f"{name}/divisor", span)
    g.emit("Div", [x, divisor], name, name, span)


def _lower_identity(g: _Graph, node: ir.Node) -> None:
    g.emit("Identity", g.inputs(node), node.name, node.name, node.span)


def _lower_flatten(g: _Graph, node: ir.Flatten) -> None:
    g.emit("Flatten", g.inputs(node), node.name, node.name, node.span, axis=1)


def _lower_linear(g: _Graph, node: ir.Linear) -> None:
    inputs = [*g.inputs(node), f"{node.name}.weight"]
    bias = g.weight(f"{node.name}.bias")
    if bias:
        inputs.append(bias)
    g.emit("Gemm", inputs, node.name, node.name, node.span, transB=1)


def _lower_upsample(g: _Graph, node: ir.Upsample) -> None:
    (x,) = g.inputs(node)
    attributes: dict[str, Any] = {}
    scales = g.const(f"{node.name}/scales", [1.0, 1.0, *node.scale], np.float32)
    # opset 11 and 12 need the (unused) roi input; later opsets accept an empty name.
    roi = g.const(f"{node.name}/roi", np.zeros(0), np.float32) if g.opset < 13 else ""
    if node.mode == "nearest":
        # torch nearest: src = floor(dst / scale)
        attributes.update(mode="nearest", coordinate_transformation_mode="asymmetric",
                          nearest_mode="floor")
    else:
        # torch bilinear, align_corners=False: src = (dst + 0.5) / scale - 0.5
        attributes.update(mode="linear", coordinate_transformation_mode="half_pixel")
    g.emit("Resize", [x, roi, scales], node.name, node.name, node.span, **attributes)


def _lower_add(g: _Graph, node: ir.Add) -> None:
    inputs = g.inputs(node)
    op = "Add" if len(inputs) == 2 else "Sum"
    g.emit(op, inputs, node.name, node.name, node.span)


def _lower_binary(op: str) -> Callable[[_Graph, ir.Node], None]:
    def lower(g: _Graph, node: ir.Node) -> None:
        g.emit(op, g.inputs(node), node.name, node.name, node.span)

    return lower


def _lower_concat(g: _Graph, node: ir.Concat) -> None:
    g.emit("Concat", g.inputs(node), node.name, node.name, node.span, axis=node.axis)


def _lower_input(g: _Graph, node: ir.Input) -> None:
    """Graph inputs become value infos, not nodes."""


LOWERINGS: dict[str, Callable[[_Graph, Any], None]] = {
    "input": _lower_input,
    "conv": _lower_conv,
    "conv_transpose": _lower_conv_transpose,
    "batchnorm": _lower_batchnorm,
    "activation": _lower_activation,
    "softmax": _lower_softmax,
    "pool": _lower_pool,
    "global_pool": _lower_global_pool,
    "adaptive_pool": _lower_adaptive_pool,
    "channel_pool": _lower_channel_pool,
    "lrn": _lower_lrn,
    "dropout": _lower_identity,  # the identity at inference
    "flatten": _lower_flatten,
    "linear": _lower_linear,
    "upsample": _lower_upsample,
    "identity": _lower_identity,
    "add": _lower_add,
    "mul": _lower_binary("Mul"),
    "concat": _lower_concat,
    "box_head": _lower_identity,
    "detect_head": _lower_identity,
    "groupnorm": _lower_groupnorm,
}


def _value_info(name: str, shape: tuple[Any, ...], batch: int | str) -> wire.ValueInfo:
    dims: list[int | str] = [batch]
    dims += [d if isinstance(d, int) else dim_str(d) for d in shape]
    return wire.ValueInfo(name, FLOAT, dims)


def _graph(network: ir.Network, opset: int, weights: dict[str, np.ndarray],
           folded: dict[str, str], dynamic_batch: bool) -> wire.Graph:
    g = _Graph(network, opset, weights, folded)
    reporter = Reporter()
    for node in network.nodes:
        lowering = LOWERINGS.get(node.kind)
        try:
            if lowering is None:
                raise _Unsupported(f"the ONNX backend has no lowering for {node.kind} layers")
            lowering(g, node)
        except _Unsupported as error:
            reporter.error(Code.UNSUPPORTED, node.span,
                           f"cannot lower {node.name} to ONNX opset {opset}: {error.message}",
                           *error.notes)
    reporter.raise_if_errors()
    batch: int | str = "N" if dynamic_batch else 1
    inputs = [_value_info(name, _shape(g, name), batch) for name in network.inputs]
    outputs = []
    for output, target in network.outputs.items():
        source = g.tensor(network.node(target).name)
        if source != output:
            g.emit("Identity", [source], output, output, None)
        outputs.append(_value_info(output, tuple(network.node(target).shape or ()), batch))
    return wire.Graph(network.name, g.nodes, inputs, outputs, weights,
                      doc=f"network {network.name} from {network.file}")


def build_onnx(spec_or_network: ir.Network | str | Path, *, opset: int | None = None,
               dynamic_batch: bool = True,
               weights: str | Path | Mapping[str, Any] | None = None,
               fold_batchnorm: bool = False, seed: int = 0, by: str = "auto",
               rename: Sequence[tuple[str, str]] = (), strict: bool = True,
               **load_options: Any) -> wire.Model:
    """The ONNX model of a network as plain data, ready to encode (see :func:`to_onnx`).

    ``weights`` is a checkpoint file or a mapping, matched to the network ``by`` name, order or
    both after ``rename`` (see :mod:`cnndsl.weights`); under ``strict`` a checkpoint that does
    not fit raises :class:`cnndsl.weights.WeightsError`, otherwise a warning tells what keeps
    its seeded initialisation.
    """
    from cnndsl import __version__
    from cnndsl.compiler import load

    if isinstance(spec_or_network, ir.Network):
        network = spec_or_network
    else:
        network = load(spec_or_network, **load_options)
    chosen = _check_opset(opset)
    if weights is None:
        arrays = random_weights(network, seed)
    else:
        from cnndsl.weights import network_weights

        loaded = network_weights(network, weights, by=by, rename=rename, strict=strict,
                                 seed=seed)
        arrays = loaded.arrays
        if loaded.warning is not None:
            import warnings

            from cnndsl.diagnostics import render_all

            warnings.warn(render_all([loaded.warning]), UserWarning, stacklevel=2)
    folded = fold_batchnorms(network, arrays) if fold_batchnorm else {}
    graph = _graph(network, chosen, arrays, folded, dynamic_batch)
    return wire.Model(graph, chosen, _ir_version(chosen), "cnndsl", __version__,
                      doc=f"{network.name} ({network.file}), cnndsl {__version__}",
                      metadata={"cnndsl.network": network.name, "cnndsl.file": network.file,
                                "cnndsl.version": __version__,
                                "cnndsl.batchnorm_folded": str(bool(folded)).lower()})


def to_onnx(spec_or_network: ir.Network | str | Path, *, opset: int | None = None,
            dynamic_batch: bool = True,
            weights: str | Path | Mapping[str, Any] | None = None,
            fold_batchnorm: bool = False, seed: int = 0, by: str = "auto",
            rename: Sequence[tuple[str, str]] = (), strict: bool = True,
            **load_options: Any) -> onnx.ModelProto:
    """Build the ONNX model of a network (or of a spec, loaded with ``load_options``)."""
    model = build_onnx(spec_or_network, opset=opset, dynamic_batch=dynamic_batch,
                       weights=weights, fold_batchnorm=fold_batchnorm, seed=seed, by=by,
                       rename=rename, strict=strict, **load_options)
    return as_proto(model)


def as_proto(model: wire.Model) -> onnx.ModelProto:
    """Parse a model's bytes into an ``onnx.ModelProto`` (imports onnx)."""
    import onnx

    data = wire.to_bytes(model)
    if len(data) > PROTOBUF_LIMIT:
        raise ValueError(f"model {model.graph.name} is larger than protobuf's 2 GB limit; "
                         "write it with write_onnx, which puts the weights beside it")
    return onnx.load_model_from_string(data)


def write_onnx(model: wire.Model | onnx.ModelProto, path: str | Path, *,
               external_data: bool | None = None) -> list[Path]:
    """Write a model atomically (temporary files, then renames); returns the files, model first.

    A :class:`~cnndsl.backends.onnx_wire.Model` streams from its weight arrays, with no copy.
    With ``external_data`` (by default: when the model would pass protobuf's 2 GB limit) its
    weights go to ``PATH.data`` beside it, as ONNX external data.
    """
    if not isinstance(model, wire.Model):
        if external_data:
            raise ValueError("external data is written for cnndsl's models; for a ModelProto "
                             "use onnx.save_model(..., save_as_external_data=True)")
        return [atomic_write(path, model.SerializeToString())]
    path = Path(path)
    embedded = wire.chunks(model)
    if external_data is None:
        external_data = wire.nbytes(embedded) > PROTOBUF_LIMIT
    if not external_data:
        return [atomic_write(path, embedded)]
    location = f"{path.name}.data"
    graph, data = wire.external_chunks(model, location)
    # Both files are written before either replaces an old one, and the weights are renamed
    # first: an old model that has no weights file never sees a half-made pair.
    weights = path.with_name(location)
    atomic_write_all([(weights, data), (path, graph)])
    return [path, weights]


__all__ = ["LOWERINGS", "as_proto", "build_onnx", "cache_dir", "fold_batchnorms", "max_opset",
           "opset_limits", "parameter_specs", "random_weights", "read_weights",
           "to_onnx", "write_onnx"]
