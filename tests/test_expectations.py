"""expect lines: every comparison operator the language reference lists, at and off equality."""

from __future__ import annotations

import pytest

import cnndsl


@pytest.mark.parametrize(("line", "holds"), [
    ("params == 112", True), ("params == 111", False),
    ("params != 1", True), ("params != 112", False),
    ("params <= 112", True), ("params <= 111", False),
    ("params >= 112", True), ("params >= 113", False),
    ("params < 113", True), ("params < 112", False),
    ("params > 111", True), ("params > 112", False),
])
def test_each_comparison_operator(line: str, holds: bool) -> None:
    spec = f"network n {{\n  input x: 3 x 8 x 8\n  conv 4 3x3\n  expect {line}\n}}\n"
    result = cnndsl.check(spec)
    assert result.network is not None
    assert [e.ok for e in result.network.expects] == [holds]
    assert result.ok is holds
