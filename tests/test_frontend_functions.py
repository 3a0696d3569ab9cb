"""Functions in expressions: ``min``, ``max``, ``make_divisible`` (torchvision's semantics) and
the roundings, evaluated where constants, parameters and layer arguments are."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.frontend.functions import make_divisible


def value(expression: str) -> object:
    spec = (f"const v = {expression}\nnetwork n {{\n  input x: 3 x 4 x 4\n"
            "  conv 1 1x1\n}\n")
    from cnndsl.diagnostics import Reporter
    from cnndsl.frontend.expressions import Expressions
    from cnndsl.syntax.parser import parse

    const = parse(spec).items[0]
    return Expressions(Reporter()).evaluate(const.value, {})  # type: ignore[union-attr]


@pytest.mark.parametrize(("expression", "expected"), [
    ("max(16, 64 // 4)", 16),
    ("max(16, 256 // 4)", 64),
    ("min(3, 1, 2)", 1),
    ("max(2.5, 2)", 2.5),
    # torchvision MobileNetV2 / V3 widths
    ("make_divisible(32 * 0.75, 8)", 24),
    ("make_divisible(16 * 0.75, 8)", 16),
    ("make_divisible(96 * 0.35, 8)", 32),
    ("make_divisible(1280 * 1.4, 8)", 1792),
    ("make_divisible(24 * 0.5, 8)", 16),
    ("make_divisible(10, 8, min_value = 16)", 16),
    ("make_divisible(v = 7, divisor = 4)", 8),
    ("int(2.9)", 2), ("int(-2.9)", -2), ("round(2.5)", 2), ("round(3.5)", 4),
    ("ceil(2.1)", 3), ("floor(-2.1)", -3), ("max(round(3 * 0.33), 1)", 1),
])
def test_function_values(expression: str, expected: object) -> None:
    result = value(expression)
    assert result == expected and type(result) is type(expected)


def _torchvision_make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    # torchvision.models._utils._make_divisible, written out (tests do not import torchvision).
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


@settings(deadline=None)
@given(st.floats(0.01, 1e6, allow_nan=False), st.integers(1, 64),
       st.one_of(st.none(), st.integers(1, 256)))
def test_make_divisible_is_torchvisions(v: float, divisor: int, minimum: int | None) -> None:
    result = make_divisible(v, divisor, minimum)
    assert result == _torchvision_make_divisible(v, divisor, minimum)
    assert result >= (minimum or divisor) and result >= 0.9 * v
    if minimum is None or minimum % divisor == 0:
        assert result % divisor == 0
    assert not math.isnan(result)


def test_functions_work_in_layer_arguments_and_block_defaults() -> None:
    spec = """
block b(c, hidden = max(16, c // 4)) {
  conv hidden 1x1 -> conv c 1x1
}
network n(width = 0.5) {
  input image: 3 x 8 x 8
  stem: conv make_divisible(64 * width, 8) 3x3 pad 1
  b(128)
  expect stem == N x 32 x 8 x 8
}
"""
    network = cnndsl.load(spec)
    assert [n.out_channels for n in network.nodes if n.kind == "conv"] == [32, 32, 128]
