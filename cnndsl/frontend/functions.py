"""The functions of expressions: ``min``, ``max``, ``make_divisible`` and the roundings.

Each is evaluated on numbers (ints and floats, never symbolic sizes) with the semantics of the
Python that reference implementations are written in, so that a width written as in the
reference comes out the same: ``make_divisible`` is torchvision's ``_make_divisible``,
``round`` is Python's (halves to even), ``int`` truncates toward zero.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from cnndsl.ops.words import ArgumentError

Number = int | float


@dataclass(frozen=True)
class Function:
    """One function: its parameters (positional, then the optional ones) and its body."""

    name: str
    params: tuple[str, ...]
    required: int  # how many of the parameters must be given
    body: Callable[..., Number]
    variadic: bool = False  # min and max take any number of values

    @property
    def usage(self) -> str:
        """How a call is written, for the note of a misuse."""
        if self.variadic:
            return f"usage: {self.name}(a, b, ...)"
        shown = [p if i < self.required else f"{p}=..." for i, p in enumerate(self.params)]
        return f"usage: {self.name}({', '.join(shown)})"

    def apply(self, positional: Sequence[Number], named: dict[str, Number]) -> Number:
        """The value for these arguments; ArgumentError when they do not fit."""
        if self.variadic:
            if named:
                raise ArgumentError(f"takes no named arguments, got '{next(iter(named))}'")
            if not positional:
                raise ArgumentError("needs at least one value")
            return self.body(*positional)  # type: ignore[no-any-return]
        if len(positional) > len(self.params):
            count = len(self.params)
            raise ArgumentError(f"takes at most {count} argument{'s' if count != 1 else ''}")
        values = dict(zip(self.params, positional, strict=False))
        for name, value in named.items():
            if name not in self.params:
                raise ArgumentError(f"has no parameter '{name}'")
            if name in values:
                raise ArgumentError(f"'{name}' is given twice")
            values[name] = value
        missing = [p for p in self.params[: self.required] if p not in values]
        if missing:
            raise ArgumentError(f"needs '{missing[0]}'")
        return self.body(**values)  # type: ignore[no-any-return]


def make_divisible(v: Number, divisor: Number, min_value: Number | None = None) -> int:
    """torchvision's ``_make_divisible``: ``v`` rounded to a multiple of ``divisor``, never
    below ``min_value`` (default ``divisor``) nor more than 10% below ``v``."""
    if not isinstance(divisor, int) or divisor < 1:
        raise ArgumentError(f"the divisor must be a whole number above zero, got {divisor}",
                            code="value")
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:  # rounding down must not lose more than 10%
        new_v += divisor
    return int(new_v)


def _whole(function: Callable[[Any], Any]) -> Callable[[Number], int]:
    def body(v: Number) -> int:
        if isinstance(v, float) and not math.isfinite(v):
            raise ArgumentError(f"cannot round {v}", code="value")
        return int(function(v))

    return body


FUNCTIONS: dict[str, Function] = {
    f.name: f for f in (
        Function("min", (), 0, min, variadic=True),
        Function("max", (), 0, max, variadic=True),
        Function("make_divisible", ("v", "divisor", "min_value"), 2, make_divisible),
        Function("int", ("v",), 1, _whole(int)),
        Function("round", ("v",), 1, _whole(round)),
        Function("ceil", ("v",), 1, _whole(math.ceil)),
        Function("floor", ("v",), 1, _whole(math.floor)),
    )
}
