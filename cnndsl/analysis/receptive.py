"""Receptive fields: which input pixels each tensor's outputs read, exactly, per axis.

For a tensor and an axis (height or width) the analysis keeps, for every output index ``i``, the
interval ``[lo(i), hi(i)]`` of input pixel indices that ``i`` depends on, on an unbounded input
(padding counts as pixels, as in the textbook formula ``r_out = r_in + (k - 1) * d * j_in``). The
interval is periodic: with a period of ``P`` outputs, ``lo(i + P) = lo(i) + shift``. Convolutions
and pooling keep ``P = 1`` (the textbook jump and start); transposed convolutions and upsampling
make it larger, because their outputs read different numbers of inputs by position. Each layer
kind has a rule in ``RULES`` that lists the input indices one output reads (its taps), so the
composition is exact for dilation, padding, asymmetric ``same`` padding, ceil-mode pooling,
transposed convolutions with any stride and kernel, nearest and bilinear upsampling.

Branches (add, concat, mul) take the union of their inputs' intervals; where the inputs' fields
differ, the merge records each input's size. A path through global pooling, adaptive pooling at
a symbolic size, a softmax over a spatial axis, or a flatten reads the whole input (``whole``).

Reported per tensor (:class:`cnndsl.ir.ReceptiveField`): ``size`` (the largest extent over the
output positions, in input pixels), ``jump`` (input pixels between neighbouring outputs, the
effective stride) and ``offset`` (the centre of output 0's field, in input pixel indices: pixel
``k`` has its centre at ``k``), each as (height, width).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

from cnndsl import ir

# Periods beyond this are not followed (they would need pathological stacks of odd upsamplings);
# such a tensor is reported as reading the whole input rather than taking unbounded time.
MAX_PERIOD = 1 << 16


@dataclass(frozen=True)
class AxisMap:
    """One axis of a field: ``lo``/``hi`` per residue of a period, shifted per period."""

    period: int
    shift: int
    lo: tuple[int | None, ...]
    hi: tuple[int | None, ...]

    def at(self, index: int) -> tuple[int, int] | None:
        """The input interval that output ``index`` reads (None: it reads nothing)."""
        quotient, residue = divmod(index, self.period)
        low = self.lo[residue]
        if low is None:
            return None
        high = self.hi[residue]
        assert high is not None
        return low + self.shift * quotient, high + self.shift * quotient

    @property
    def jump(self) -> Fraction:
        """Input pixels between neighbouring outputs (the effective stride)."""
        return Fraction(self.shift, self.period)


IDENTITY_AXIS = AxisMap(1, 1, (0,), (0,))


@dataclass(frozen=True)
class Taps:
    """A layer on one axis: ``taps(i)`` are the input indices output ``i`` reads.

    ``taps(i + step) == [t + advance for t in taps(i)]`` for every ``i``.
    """

    taps: Callable[[int], Iterable[int]]
    step: int
    advance: int


def compose(source: AxisMap, layer: Taps) -> AxisMap | None:
    """The field after ``layer`` of a tensor whose field is ``source`` (None: too long a period)."""
    # smallest k with advance * k a multiple of the source period: then i -> i + step * k moves
    # every tap by whole source periods
    k = source.period // math.gcd(source.period, layer.advance) if layer.advance else 1
    period = layer.step * k
    if period > MAX_PERIOD:
        return None
    shift = source.shift * (layer.advance * k // source.period)
    lows: list[int | None] = []
    highs: list[int | None] = []
    for residue in range(period):
        low: int | None = None
        high: int | None = None
        for tap in layer.taps(residue):
            interval = source.at(tap)
            if interval is None:
                continue
            low = interval[0] if low is None else min(low, interval[0])
            high = interval[1] if high is None else max(high, interval[1])
        lows.append(low)
        highs.append(high)
    return _reduced(AxisMap(period, shift, tuple(lows), tuple(highs)))


def _reduced(axis: AxisMap) -> AxisMap:
    """The same map with the shortest period (a stride after an upsampling collapses it)."""
    for divisor in _divisors(axis.period):
        if divisor == axis.period:
            break
        if (axis.shift * divisor) % axis.period:
            continue
        shift = axis.shift * divisor // axis.period
        if all(axis.at(i) == _shifted(axis.at(i % divisor), shift * (i // divisor))
               for i in range(axis.period)):
            return AxisMap(divisor, shift, axis.lo[:divisor], axis.hi[:divisor])
    return axis


def _shifted(interval: tuple[int, int] | None, by: int) -> tuple[int, int] | None:
    return None if interval is None else (interval[0] + by, interval[1] + by)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def union(first: AxisMap, second: AxisMap) -> AxisMap | None:
    """The union of two maps of one jump over their common period (None: the jumps differ)."""
    if first.jump != second.jump:
        return None
    period = math.lcm(first.period, second.period)
    if period > MAX_PERIOD:
        return None
    shift = int(first.jump * period)
    lows: list[int | None] = []
    highs: list[int | None] = []
    for index in range(period):
        parts = [p for p in (first.at(index), second.at(index)) if p is not None]
        lows.append(min(p[0] for p in parts) if parts else None)
        highs.append(max(p[1] for p in parts) if parts else None)
    return _reduced(AxisMap(period, shift, tuple(lows), tuple(highs)))


# ---------------------------------------------------------------------------------------------
# the layers, one axis at a time


def window(kernel: int, stride: int, padding: int, dilation: int = 1) -> Taps:
    """A convolution or pooling window: output i reads i*stride - padding + m*dilation."""

    def taps(index: int) -> Iterable[int]:
        start = index * stride - padding
        return range(start, start + (kernel - 1) * dilation + 1, dilation)

    return Taps(taps, 1, stride)


def transposed(kernel: int, stride: int, padding: int, dilation: int = 1) -> Taps:
    """A transposed convolution: output o reads t where o = t*stride - padding + m*dilation."""

    def taps(index: int) -> Iterable[int]:
        found = []
        for m in range(kernel):
            position = index + padding - m * dilation
            if position % stride == 0:
                found.append(position // stride)
        return found

    return Taps(taps, stride, 1)


def nearest(scale: int) -> Taps:
    """Nearest upsampling by an integer factor: output o copies input o // scale."""
    return Taps(lambda index: (index // scale,), scale, 1)


def bilinear(scale: int) -> Taps:
    """Bilinear upsampling (align_corners=False): output o reads the two inputs around its source.

    The source is ``(o + 0.5) / scale - 0.5 = (2o + 1 - scale) / (2 scale)``; where it lands on an
    input exactly (odd factors) the neighbour's weight is zero, so only one input is read.
    """

    def taps(index: int) -> Iterable[int]:
        numerator, denominator = 2 * index + 1 - scale, 2 * scale
        below = numerator // denominator
        return (below,) if numerator % denominator == 0 else (below, below + 1)

    return Taps(taps, scale, 1)


def adaptive(size: int, output: int) -> Taps:
    """Adaptive pooling of ``size`` inputs to ``output``: PyTorch's start/end index rule."""

    def taps(index: int) -> Iterable[int]:
        base, residue = divmod(index, output)
        start = (residue * size) // output
        end = -((-(residue + 1) * size) // output)
        return range(base * size + start, base * size + end)

    return Taps(taps, output, size)


# ---------------------------------------------------------------------------------------------
# tensors


@dataclass(frozen=True)
class Field:
    """A tensor's field relative to one input: per-axis maps (one per jump) and ``whole``."""

    height: tuple[AxisMap, ...]
    width: tuple[AxisMap, ...]
    whole: bool = False
    branches: tuple[tuple[str, tuple[int, int] | None], ...] = ()

    @property
    def local(self) -> bool:
        """Whether any path reads a bounded window (not only the whole input)."""
        return bool(self.height and self.width)


WHOLE = Field((), (), True)
INPUT = Field((IDENTITY_AXIS,), (IDENTITY_AXIS,))

# A layer's rule: the node and its input fields -> its output field.
Rule = Callable[[ir.Node, list[Field], list["ir.Shape | None"]], Field]


def _each(field: Field, height: Taps, width: Taps) -> Field:
    if not field.local:
        return Field((), (), field.whole)
    heights = [compose(m, height) for m in field.height]
    widths = [compose(m, width) for m in field.width]
    if any(m is None for m in (*heights, *widths)):
        return WHOLE
    return Field(_merged(m for m in heights if m is not None),
                 _merged(m for m in widths if m is not None), field.whole)


def _merged(maps: Iterable[AxisMap]) -> tuple[AxisMap, ...]:
    """Maps of equal jumps joined into one; distinct jumps stay apart."""
    by_jump: dict[Fraction, AxisMap] = {}
    for axis in maps:
        known = by_jump.get(axis.jump)
        joined = axis if known is None else union(known, axis)
        if joined is None:  # a period too long to follow
            return ()
        by_jump[axis.jump] = joined
    return tuple(by_jump[jump] for jump in sorted(by_jump))


def _conv(node: ir.Conv, fields: list[Field], shapes: list[ir.Shape | None]) -> Field:
    (kh, kw), (sh, sw), (dh, dw) = node.kernel, node.stride, node.dilation
    top, left = node.padding[0], node.padding[1]
    return _each(fields[0], window(kh, sh, top, dh), window(kw, sw, left, dw))


def _conv_transpose(node: ir.ConvTranspose, fields: list[Field],
                    shapes: list[ir.Shape | None]) -> Field:
    (kh, kw), (sh, sw), (dh, dw) = node.kernel, node.stride, node.dilation
    ph, pw = node.padding
    return _each(fields[0], transposed(kh, sh, ph, dh), transposed(kw, sw, pw, dw))


def _pool(node: ir.Pool, fields: list[Field], shapes: list[ir.Shape | None]) -> Field:
    (kh, kw), (sh, sw), (ph, pw) = node.kernel, node.stride, node.padding
    return _each(fields[0], window(kh, sh, ph), window(kw, sw, pw))


def _adaptive(node: ir.AdaptivePool, fields: list[Field],
              shapes: list[ir.Shape | None]) -> Field:
    shape = shapes[0]
    if shape is None or len(shape) != 3 or not all(isinstance(d, int) for d in shape[1:]):
        return WHOLE  # the windows depend on a size that is still symbolic
    height, width = shape[1], shape[2]
    assert isinstance(height, int) and isinstance(width, int)
    oh, ow = node.output_size
    return _each(fields[0], adaptive(height, oh), adaptive(width, ow))


def _upsample(node: ir.Upsample, fields: list[Field], shapes: list[ir.Shape | None]) -> Field:
    make = nearest if node.mode == "nearest" else bilinear
    return _each(fields[0], make(node.scale[0]), make(node.scale[1]))


def _same(node: ir.Node, fields: list[Field], shapes: list[ir.Shape | None]) -> Field:
    return Field(fields[0].height, fields[0].width, fields[0].whole)


def _whole(node: ir.Node, fields: list[Field], shapes: list[ir.Shape | None]) -> Field:
    return WHOLE


def _softmax(node: ir.Softmax, fields: list[Field], shapes: list[ir.Shape | None]) -> Field:
    spatial = shapes[0] is not None and len(shapes[0]) == 3
    if spatial and node.axis not in (1, -3):
        return WHOLE  # every output reads its whole row or column of the map
    return _same(node, fields, shapes)


def _merge(node: ir.Node, fields: list[Field], shapes: list[ir.Shape | None]) -> Field:
    height = _merged(m for f in fields for m in f.height)
    width = _merged(m for f in fields for m in f.width)
    whole = any(f.whole for f in fields) or not (height and width)
    summaries = [(name, extent(f)) for name, f in zip(node.inputs, fields, strict=True)]
    differ = len({(e, offset(f)) for (_, e), f in zip(summaries, fields, strict=True)}) > 1
    return Field(height, width, whole, tuple(summaries) if differ else ())


RULES: dict[str, Rule] = {
    "input": lambda node, fields, shapes: INPUT,
    "conv": _conv,  # type: ignore[dict-item]
    "conv_transpose": _conv_transpose,  # type: ignore[dict-item]
    "batchnorm": _same,
    "groupnorm": _same,
    "activation": _same,
    "softmax": _softmax,  # type: ignore[dict-item]
    "pool": _pool,  # type: ignore[dict-item]
    "global_pool": _whole,
    "adaptive_pool": _adaptive,  # type: ignore[dict-item]
    "channel_pool": _same,
    "lrn": _same,
    "dropout": _same,
    "flatten": _whole,
    "linear": _whole,
    "upsample": _upsample,  # type: ignore[dict-item]
    "identity": _same,
    "add": _merge,
    "mul": _merge,
    "concat": _merge,
    "box_head": _same,
    "detect_head": _same,
}


# ---------------------------------------------------------------------------------------------
# what is reported


def _extent_axis(maps: tuple[AxisMap, ...]) -> int:
    """The largest extent over output positions of the union of maps."""
    if not maps:
        return 0
    period = math.lcm(*(m.period for m in maps))
    if len(maps) > 1:  # different jumps: the union grows with the index; over a few periods
        period *= 4
    largest = 0
    for index in range(period):
        parts = [p for p in (m.at(index) for m in maps) if p is not None]
        if parts:
            largest = max(largest, max(p[1] for p in parts) - min(p[0] for p in parts) + 1)
    return largest


def extent(field: Field) -> tuple[int, int] | None:
    """(height, width) of the largest window an output reads; None when it reads everything."""
    if field.whole or not field.local:
        return None
    return _extent_axis(field.height), _extent_axis(field.width)


def _primary(maps: tuple[AxisMap, ...]) -> AxisMap:
    return max(maps, key=lambda m: (m.jump, m.period))


def _centre(axis: AxisMap) -> Fraction | None:
    for index in range(axis.period):
        interval = axis.at(index)
        if interval is not None:
            return Fraction(interval[0] + interval[1], 2) - index * axis.jump
    return None


def offset(field: Field) -> tuple[Fraction, Fraction] | None:
    """Where output 0's field is centred, in input pixel indices (height, width)."""
    if not field.local:
        return None
    height, width = _centre(_primary(field.height)), _centre(_primary(field.width))
    if height is None or width is None:
        return None
    return height, width


def jump(field: Field) -> tuple[Fraction, Fraction] | None:
    """Input pixels between neighbouring outputs (height, width)."""
    if not field.local:
        return None
    return _primary(field.height).jump, _primary(field.width).jump


def interval(field: Field, index: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """The input rows and columns that output ``index`` (row, column) reads (unbounded input)."""
    rows = [p for p in (m.at(index[0]) for m in field.height) if p is not None]
    cols = [p for p in (m.at(index[1]) for m in field.width) if p is not None]
    if not rows or not cols:
        raise ValueError(f"output {index} reads no input pixel")
    return ((min(p[0] for p in rows), max(p[1] for p in rows)),
            (min(p[0] for p in cols), max(p[1] for p in cols)))


def fields(network: ir.Network, source: str | None = None) -> dict[str, Field]:
    """Each tensor's field relative to ``source`` (default: the first input), in node order.

    Tensors that do not depend on ``source`` are left out.
    """
    source = source or (network.inputs[0] if network.inputs else None)
    shapes = {node.name: node.shape for node in network.nodes}
    found: dict[str, Field] = {}
    for node in network.nodes:
        kind: str = node.kind  # type: ignore[attr-defined]
        if isinstance(node, ir.Input):
            if node.name == source:
                found[node.name] = INPUT
            continue
        if not all(name in found for name in node.inputs):
            if any(name in found for name in node.inputs):  # a merge with another input
                reached = [n for n in node.inputs if n in found]
                found[node.name] = _merge(
                    dataclasses.replace(node, inputs=reached), [found[n] for n in reached],
                    [shapes[n] for n in reached])
            continue
        found[node.name] = RULES[kind](node, [found[n] for n in node.inputs],
                                       [shapes[n] for n in node.inputs])
    return found


def _number(value: Fraction) -> int | float:
    return value.numerator if value.denominator == 1 else float(value)


def report(field: Field, source: str) -> ir.ReceptiveField:
    """The IR's record of a field."""
    size, step, centre = extent(field), jump(field), offset(field)
    local = (_extent_axis(field.height), _extent_axis(field.width)) if field.local else None
    return ir.ReceptiveField(
        input=source,
        size=size,
        local_size=local if field.whole else None,
        jump=None if step is None else (_number(step[0]), _number(step[1])),
        offset=None if centre is None else (_number(centre[0]), _number(centre[1])),
        whole=field.whole,
        branches=dict(field.branches),
    )


def annotate(network: ir.Network) -> None:
    """Set each node's ``receptive_field`` relative to the first input that reaches it."""
    by_name = network.by_name()
    for node in network.nodes:
        node.receptive_field = None
    for source in network.inputs:
        for name, field in fields(network, source).items():
            node = by_name[name]
            if node.receptive_field is None:
                node.receptive_field = report(field, source)


def size_text(record: ir.ReceptiveField | None) -> str:
    """``427``, ``427x311`` or ``whole`` for a table."""
    if record is None:
        return "-"
    if record.size is None:
        local = record.local_size
        return "whole" if local is None else f"whole ({window_text(local)})"
    return window_text(record.size)


def window_text(size: tuple[int, int] | None) -> str:
    """``427``, ``427x311``, or ``whole`` for None."""
    if size is None:
        return "whole"
    height, width = size
    return str(height) if height == width else f"{height}x{width}"


def pair_text(pair: tuple[int | float, int | float] | None) -> str:
    """A (height, width) pair for a table: one number when both agree."""
    if pair is None:
        return "-"
    height, width = (f"{v:g}" if isinstance(v, float) else str(v) for v in pair)
    return height if height == width else f"{height},{width}"


def largest_side(record: ir.ReceptiveField) -> float:
    """The number ``expect receptive field(...)`` compares: the larger side, infinite if whole."""
    if record.size is None:
        return math.inf
    return max(record.size)


__all__ = [
    "RULES", "AxisMap", "Field", "Taps", "adaptive", "annotate", "bilinear", "compose", "extent",
    "fields", "interval", "jump", "largest_side", "nearest", "offset", "report", "size_text",
    "transposed", "window", "window_text",
]
