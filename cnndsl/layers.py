"""The layer words of the language: their arguments, and how each becomes IR nodes.

A word such as ``conv`` is described once, as data: its positional parameters, its keyword
parameters with types and defaults, bare flag words (``ceil``), and a builder that turns the
bound arguments and the input shape into one or more IR nodes. Adding a layer word means adding
one entry to ``LAYERS`` (and, for a new IR kind, one rule per phase elsewhere).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cnndsl import ir
from cnndsl.symbolic import Dim


class ArgumentError(Exception):
    """An argument does not fit its parameter; the elaborator adds the position."""

    def __init__(self, message: str, code: str = "type"):
        super().__init__(message)
        self.message = message
        self.code = code


class Word(str):
    """A bare name that is not bound to a value, such as ``same`` or ``bilinear``."""


class SizeLiteral(tuple[int, ...]):
    """A literal such as ``3x3``."""


class ScaleLiteral(float):
    """A literal such as ``2x``."""


# Parameter types: each turns an evaluated value into what the IR wants, or raises. ------------


def _describe(value: Any) -> str:
    if isinstance(value, Word):
        return f"the word '{value}'"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, SizeLiteral):
        return f"the size {'x'.join(map(str, value))}"
    if isinstance(value, tuple):
        return "a tuple"
    if isinstance(value, float):
        return f"the number {value:g}"
    return f"{value!r}"


def positive_int(value: Any) -> int:
    """A whole number above zero."""
    if isinstance(value, Word):
        raise ArgumentError(f"'{value}' is not defined", code="undefined")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(f"expected a whole number, got {_describe(value)}")
    if value <= 0:
        raise ArgumentError(f"expected a number above zero, got {value}", code="value")
    return value


def non_negative_int(value: Any) -> int:
    """A whole number, zero or more."""
    if isinstance(value, Word):
        raise ArgumentError(f"'{value}' is not defined", code="undefined")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(f"expected a whole number, got {_describe(value)}")
    if value < 0:
        raise ArgumentError(f"expected a number of zero or more, got {value}", code="value")
    return value


def number(value: Any) -> float:
    """Any real number."""
    if isinstance(value, Word):
        raise ArgumentError(f"'{value}' is not defined", code="undefined")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentError(f"expected a number, got {_describe(value)}")
    if not math.isfinite(value):
        raise ArgumentError(f"expected a finite number, got {value}", code="value")
    return float(value)


def probability(value: Any) -> float:
    """A number in [0, 1)."""
    p = number(value)
    if not 0 <= p < 1:
        raise ArgumentError(f"expected a probability in [0, 1), got {p:g}", code="value")
    return p


def _pair_of(item: Callable[[Any], int]) -> Callable[[Any], tuple[int, int]]:
    def coerce(value: Any) -> tuple[int, int]:
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ArgumentError(
                    f"expected a pair such as 3x3 or (1, 7), got {_describe(value)}"
                )
            return item(value[0]), item(value[1])
        single = item(value)
        return single, single

    return coerce


positive_pair = _pair_of(positive_int)
non_negative_pair = _pair_of(non_negative_int)


def boolean(value: Any) -> bool:
    """``true`` or ``false``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Word) and value in ("true", "false"):
        return value == "true"
    raise ArgumentError(f"expected true or false, got {_describe(value)}")


def choice(*options: str) -> Callable[[Any], str]:
    """One of a fixed set of words."""

    def coerce(value: Any) -> str:
        if isinstance(value, str) and value in options:
            return str(value)
        listed = ", ".join(options)
        raise ArgumentError(f"expected one of {listed}, got {_describe(value)}", code="value")

    return coerce


def padding(value: Any) -> Any:
    """``same``, ``valid``, an int, a pair (h, w) or four ints (top, left, bottom, right)."""
    if isinstance(value, Word) and value in ("same", "valid"):
        return str(value)
    if isinstance(value, tuple) and len(value) == 4:
        return tuple(non_negative_int(v) for v in value)
    return non_negative_pair(value)


def scale(value: Any) -> tuple[int, int]:
    """An integer upsampling factor: ``2x``, ``2`` or ``(2, 2)``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return positive_pair(value)


# Layer descriptions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter of a layer word: its type and default (``REQUIRED`` when it has none)."""

    coerce: Callable[[Any], Any]
    default: Any = None


REQUIRED = object()


@dataclass(frozen=True)
class Context:
    """What a builder may know beyond its arguments."""

    input_shape: tuple[Dim, ...]
    followed_by_batchnorm: bool = False
    image_size: tuple[Dim, Dim] | None = None  # the network input's H x W, for heads


Built = list[tuple[str | None, dict[str, Any]]]
Builder = Callable[[dict[str, Any], Context], Built]


@dataclass(frozen=True)
class Layer:
    """A layer word: positional order, parameters, flags and the builder."""

    word: str
    summary: str
    build: Builder
    positional: tuple[str, ...] = ()
    params: dict[str, Param] = field(default_factory=dict)
    flags: dict[str, tuple[str, Any]] = field(default_factory=dict)


def _channels(context: Context) -> int:
    channels = context.input_shape[0]
    if not isinstance(channels, int):
        raise ArgumentError(f"the channel count must be a number, not {channels}")
    return channels


def _same_padding(kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                  context: Context) -> tuple[int, int, int, int]:
    # TensorFlow's "same": output = ceil(input / stride); extra padding goes bottom/right.
    pads = []
    for axis in range(2):
        reach = dilation[axis] * (kernel[axis] - 1) + 1
        if stride[axis] == 1:
            total = reach - 1
        else:
            size = context.input_shape[1 + axis] if len(context.input_shape) == 3 else None
            if not isinstance(size, int):
                raise ArgumentError(
                    "padding 'same' with a stride needs a concrete input size", code="value"
                )
            out = -(-size // stride[axis])
            total = max((out - 1) * stride[axis] + reach - size, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return top, left, bottom, right


def _conv_padding(args: dict[str, Any], context: Context) -> tuple[int, int, int, int]:
    pad = args["padding"]
    if pad == "valid":
        return (0, 0, 0, 0)
    if pad == "same":
        return _same_padding(args["kernel"], args["stride"], args["dilation"], context)
    if len(pad) == 4:
        return pad  # type: ignore[no-any-return]
    return (pad[0], pad[1], pad[0], pad[1])


def _bias(args: dict[str, Any], context: Context) -> bool:
    # A bias right before batch norm is cancelled by its mean subtraction: leave it out
    # unless asked for, as every reference implementation does.
    if args["bias"] is None:
        return not context.followed_by_batchnorm
    return bool(args["bias"])


def build_conv(args: dict[str, Any], context: Context) -> Built:
    """``conv FILTERS KERNEL [/stride] [pad P] [dilation=D] [groups=G] [bias=B]``."""
    fields = dict(
        in_channels=_channels(context), out_channels=args["filters"], kernel=args["kernel"],
        stride=args["stride"], padding=_conv_padding(args, context), dilation=args["dilation"],
        groups=args["groups"], bias=_bias(args, context),
    )
    return [(None, {"kind": "conv", **fields})]


def build_depthwise(args: dict[str, Any], context: Context) -> Built:
    """``dwconv KERNEL [multiplier=M]``: one filter group per input channel."""
    channels = _channels(context)
    fields = dict(
        in_channels=channels, out_channels=channels * args["multiplier"], kernel=args["kernel"],
        stride=args["stride"], padding=_conv_padding(args, context), dilation=args["dilation"],
        groups=channels, bias=_bias(args, context),
    )
    return [(None, {"kind": "conv", **fields})]


def build_separable(args: dict[str, Any], context: Context) -> Built:
    """``sepconv FILTERS KERNEL``: a depthwise convolution, then a 1x1 pointwise one."""
    channels = _channels(context)
    depthwise = dict(
        in_channels=channels, out_channels=channels, kernel=args["kernel"], stride=args["stride"],
        padding=_conv_padding(args, context), dilation=args["dilation"], groups=channels,
        bias=False,
    )
    pointwise = dict(
        in_channels=channels, out_channels=args["filters"], kernel=(1, 1),
        bias=_bias(args, context),
    )
    return [("depthwise", {"kind": "conv", **depthwise}),
            ("pointwise", {"kind": "conv", **pointwise})]


def build_deconv(args: dict[str, Any], context: Context) -> Built:
    """``deconv FILTERS KERNEL [/stride] [pad P] [output_padding=O]``."""
    pad = args["padding"]
    if isinstance(pad, str) or len(pad) == 4:
        raise ArgumentError("a transposed convolution takes padding as an int or a pair",
                            code="value")
    fields = dict(
        in_channels=_channels(context), out_channels=args["filters"], kernel=args["kernel"],
        stride=args["stride"], padding=pad, output_padding=args["output_padding"],
        dilation=args["dilation"], groups=args["groups"], bias=_bias(args, context),
    )
    return [(None, {"kind": "conv_transpose", **fields})]


def build_batchnorm(args: dict[str, Any], context: Context) -> Built:
    """``bn [eps=E] [momentum=M]``."""
    return [(None, {"kind": "batchnorm", "channels": _channels(context), "eps": args["eps"],
                    "momentum": args["momentum"]})]


def _activation(function: str) -> Builder:
    def build(args: dict[str, Any], context: Context) -> Built:
        fields: dict[str, Any] = {"kind": "activation", "function": function}
        if "slope" in args:
            fields["negative_slope"] = args["slope"]
        return [(None, fields)]

    return build


def _pool(mode: str) -> Builder:
    def build(args: dict[str, Any], context: Context) -> Built:
        kernel = args["kernel"]
        stride = args["stride"] or kernel
        pad = args["padding"]
        if pad == "valid":
            pad = (0, 0)
        elif pad == "same" or len(pad) == 4:
            four = _conv_padding({**args, "stride": stride, "dilation": (1, 1)}, context)
            if four[0] != four[2] or four[1] != four[3]:
                raise ArgumentError("pooling supports only symmetric padding", code="value")
            pad = (four[0], four[1])
        fields = dict(kind="pool", mode=mode, kernel=kernel, stride=stride, padding=pad,
                      ceil_mode=args["ceil"])
        if mode == "avg":
            fields["count_include_pad"] = args["count_include_pad"]
        return [(None, fields)]

    return build


def _simple(kind: str, **fixed: Any) -> Builder:
    def build(args: dict[str, Any], context: Context) -> Built:
        return [(None, {"kind": kind, **fixed, **args})]

    return build


def build_adaptive(mode: str) -> Builder:
    """``adaptive_avgpool SIZE``."""

    def build(args: dict[str, Any], context: Context) -> Built:
        return [(None, {"kind": "adaptive_pool", "mode": mode, "output_size": args["size"]})]

    return build


def build_linear(args: dict[str, Any], context: Context) -> Built:
    """``linear UNITS [bias=B]``."""
    shape = context.input_shape
    features = shape[0] if len(shape) == 1 else None
    if not isinstance(features, int):
        # The shape rule reports the real problem (an unflattened or symbolic input).
        features = 0
    bias = True if args["bias"] is None else args["bias"]
    return [(None, {"kind": "linear", "in_features": features, "out_features": args["units"],
                    "bias": bias})]


def anchors(value: Any) -> list[tuple[float, float]]:
    """Anchors as ((w, h), (w, h), ...) in input pixels."""
    if not isinstance(value, tuple) or not value:
        raise ArgumentError("expected anchors as ((w, h), (w, h), ...)")
    if len(value) == 2 and not isinstance(value[0], tuple):
        value = (value,)
    result = []
    for pair in value:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ArgumentError("each anchor is a pair (width, height)")
        width, height = number(pair[0]), number(pair[1])
        if width <= 0 or height <= 0:
            raise ArgumentError("anchor sizes must be above zero", code="value")
        result.append((width, height))
    return result


def build_detect(args: dict[str, Any], context: Context) -> Built:
    """``detect anchors=((10, 14), ...) classes=C stride=S``."""
    return [(None, {"kind": "detect_head", "anchors": args["anchors"],
                    "classes": args["classes"], "stride": args["stride"],
                    "image_size": context.image_size})]


_KERNEL = Param(positive_pair, REQUIRED)
_STRIDE = Param(positive_pair, (1, 1))
_PAD = Param(padding, (0, 0))
_DILATION = Param(positive_pair, (1, 1))
_BIAS = Param(lambda v: boolean(v), None)

_CONV_PARAMS = {
    "filters": Param(positive_int, REQUIRED), "kernel": _KERNEL, "stride": _STRIDE,
    "padding": _PAD, "dilation": _DILATION, "groups": Param(positive_int, 1), "bias": _BIAS,
}


def _pool_params() -> dict[str, Param]:
    return {
        "kernel": _KERNEL, "stride": Param(positive_pair, None), "padding": _PAD,
        "ceil": Param(boolean, False),
    }


def _catalogue() -> dict[str, Layer]:
    layers = [
        Layer("conv", "2-D convolution", build_conv, ("filters", "kernel"), dict(_CONV_PARAMS)),
        Layer("dwconv", "depthwise convolution (groups = input channels)", build_depthwise,
              ("kernel",), {**{k: v for k, v in _CONV_PARAMS.items()
                               if k not in ("filters", "groups")},
                            "multiplier": Param(positive_int, 1)}),
        Layer("sepconv", "depthwise separable convolution", build_separable,
              ("filters", "kernel"),
              {k: v for k, v in _CONV_PARAMS.items() if k != "groups"}),
        Layer("deconv", "transposed convolution", build_deconv, ("filters", "kernel"),
              {**_CONV_PARAMS, "output_padding": Param(non_negative_pair, (0, 0))}),
        Layer("bn", "batch normalisation", build_batchnorm, (),
              {"eps": Param(number, 1e-5), "momentum": Param(number, 0.1)}),
        Layer("relu", "rectified linear unit", _activation("relu")),
        Layer("relu6", "ReLU clipped at 6", _activation("relu6")),
        Layer("leakyrelu", "leaky ReLU with a negative slope", _activation("leaky_relu"),
              ("slope",), {"slope": Param(number, 0.01)}),
        Layer("sigmoid", "logistic sigmoid", _activation("sigmoid")),
        Layer("tanh", "hyperbolic tangent", _activation("tanh")),
        Layer("silu", "SiLU, also called swish", _activation("silu")),
        Layer("swish", "SiLU, also called swish", _activation("silu")),
        Layer("hardswish", "hard swish (MobileNetV3)", _activation("hardswish")),
        Layer("hardsigmoid", "hard sigmoid", _activation("hardsigmoid")),
        Layer("gelu", "Gaussian error linear unit", _activation("gelu")),
        Layer("softmax", "softmax over channels or features", _simple("softmax")),
        Layer("maxpool", "max pooling (stride defaults to the kernel)", _pool("max"),
              ("kernel",), _pool_params(), {"ceil": ("ceil", True)}),
        Layer("avgpool", "average pooling (stride defaults to the kernel)", _pool("avg"),
              ("kernel",), {**_pool_params(), "count_include_pad": Param(boolean, True)},
              {"ceil": ("ceil", True)}),
        Layer("gap", "global average pooling to C x 1 x 1", _simple("global_pool", mode="avg")),
        Layer("gmp", "global max pooling to C x 1 x 1", _simple("global_pool", mode="max")),
        Layer("adaptive_avgpool", "adaptive average pooling to a size", build_adaptive("avg"),
              ("size",), {"size": Param(positive_pair, REQUIRED)}),
        Layer("adaptive_maxpool", "adaptive max pooling to a size", build_adaptive("max"),
              ("size",), {"size": Param(positive_pair, REQUIRED)}),
        Layer("channel_maxpool", "max pooling across channels (depthwise max pooling)",
              _simple("channel_pool"), ("kernel",), {"kernel": Param(positive_int, REQUIRED)}),
        Layer("lrn", "local response normalisation across channels", _simple("lrn"), ("size",),
              {"size": Param(positive_int, 5), "alpha": Param(number, 1e-4),
               "beta": Param(number, 0.75), "k": Param(number, 1.0)}),
        Layer("dropout", "dropout (identity at inference)", _simple("dropout"), ("p",),
              {"p": Param(probability, 0.5)}),
        Layer("flatten", "flatten C x H x W into features", _simple("flatten")),
        Layer("linear", "fully connected layer", build_linear, ("units",),
              {"units": Param(positive_int, REQUIRED), "bias": _BIAS}),
        Layer("upsample", "upsampling by an integer factor", _simple("upsample"),
              ("scale", "mode"), {"scale": Param(scale, (2, 2)),
                                  "mode": Param(choice("nearest", "bilinear"), "nearest")},
              {"nearest": ("mode", "nearest"), "bilinear": ("mode", "bilinear")}),
        Layer("identity", "the identity", _simple("identity")),
        Layer("boxes", "box-regression head: N x 4k features as k boxes", _simple("box_head"),
              ("format",), {"format": Param(choice("xyxy", "xywh", "cxcywh"), "cxcywh"),
                            "boxes": Param(positive_int, 1)},
              {"xyxy": ("format", "xyxy"), "xywh": ("format", "xywh"),
               "cxcywh": ("format", "cxcywh")}),
        Layer("detect", "YOLO-style detection head on a grid", build_detect, (),
              {"anchors": Param(anchors, REQUIRED), "classes": Param(positive_int, REQUIRED),
               "stride": Param(positive_int, REQUIRED)}),
    ]
    return {layer.word: layer for layer in layers}


LAYERS: dict[str, Layer] = _catalogue()

# Words that take tensors rather than numbers: add(a, b), mul(a, b), concat(a, b).
TENSOR_OPS = {"add": "add", "mul": "mul", "concat": "concat"}

# Words that take a braced body.
COMPOSITES = ("residual", "concat", "scale", "se")

NODE_TYPES: dict[str, type[ir.Node]] = {cls.model_fields["kind"].default: cls
                                         for cls in ir.NODE_KINDS}
