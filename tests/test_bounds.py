"""Sizes and counts from outside are bounded before use, with the bound in the message."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cnndsl.analysis import memory
from cnndsl.analysis.summary import summary
from cnndsl.cli import main

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "specs" / "lenet5.cnn"


@pytest.mark.parametrize("text", ["1e999GiB", "inf", "nan", "-1GiB", "1" + "0" * 400,
                                  "5000000TiB"])
def test_budgets_beyond_the_bound_are_refused_with_the_bound(text: str) -> None:
    with pytest.raises(ValueError, match="from 0 to 4,611,686,018,427,387,904 bytes"):
        memory.parse_bytes(text)


@pytest.mark.parametrize(("text", "count"), [
    ("16GiB", 16 * 2**30), ("512 MB", 512 * 10**6), ("1e3", 1000),
    ("123456789012345678", 123456789012345678),  # exact, past a float's 53 bits
])
def test_budgets_within_the_bound_are_read(text: str, count: int) -> None:
    assert memory.parse_bytes(text) == count


def test_summary_budget_overflow_is_a_usage_error_not_a_traceback(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["summary", str(LENET), "--budget", "1e999GiB"], out=io.StringIO()) == 2
    assert "4 EiB" in capsys.readouterr().err


def test_the_api_budget_is_bounded_too() -> None:
    with pytest.raises(ValueError, match="4 EiB"):
        summary(LENET, budget=1e999)  # type: ignore[arg-type]
