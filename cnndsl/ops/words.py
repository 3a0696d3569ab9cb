"""The words of the language as data: parameter types, the binding context and ``Layer``.

A word such as ``conv`` is described once, beside the kind it builds (in ``cnndsl/ops/``): its
positional parameters, its keyword parameters with types and defaults, bare flag words
(``ceil``), and a builder that turns the bound arguments and the input shape into one or more
IR nodes. This module holds what those descriptions are made of.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
        if value.is_integer() and math.isfinite(value):  # 8.0: say so, not "the number 8"
            return f"{value!r}, a number with a decimal point"
        return f"the number {value!r}"
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


def positive_number(value: Any) -> float:
    """A finite number above zero (torch's batch norm refuses an eps of zero when training)."""
    x = number(value)
    if x <= 0:
        raise ArgumentError(f"expected a number above zero, got {x:g}", code="value")
    return x


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


def channels_of(context: Context) -> int:
    """The input's channel count, which must be a number."""
    channels = context.input_shape[0]
    if not isinstance(channels, int):
        raise ArgumentError(f"the channel count must be a number, not {channels}")
    return channels


def same_padding(kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
                 context: Context) -> tuple[int, int, int, int]:
    """TensorFlow's padding "same" as (top, left, bottom, right)."""
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


def conv_padding(args: dict[str, Any], context: Context) -> tuple[int, int, int, int]:
    """A convolution's padding as (top, left, bottom, right)."""
    pad = args["padding"]
    if pad == "valid":
        return (0, 0, 0, 0)
    if pad == "same":
        return same_padding(args["kernel"], args["stride"], args["dilation"], context)
    if len(pad) == 4:
        return pad  # type: ignore[no-any-return]
    return (pad[0], pad[1], pad[0], pad[1])


def bias_of(args: dict[str, Any], context: Context) -> bool:
    """Whether a layer has a bias: as asked, else unless batch norm follows."""
    # A bias right before batch norm is cancelled by its mean subtraction: leave it out
    # unless asked for, as every reference implementation does.
    if args["bias"] is None:
        return not context.followed_by_batchnorm
    return bool(args["bias"])

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



def simple(kind: str, **fixed: Any) -> Builder:
    """A builder that passes its arguments through as the node's fields."""

    def build(args: dict[str, Any], context: Context) -> Built:
        return [(None, {"kind": kind, **fixed, **args})]

    return build


KERNEL = Param(positive_pair, REQUIRED)
STRIDE = Param(positive_pair, (1, 1))
PAD = Param(padding, (0, 0))
DILATION = Param(positive_pair, (1, 1))
BIAS = Param(lambda v: boolean(v), None)
