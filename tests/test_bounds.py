"""Sizes and counts from outside are bounded before use, with the bound in the message."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import cnndsl
from cnndsl.analysis import memory
from cnndsl.analysis.summary import summary
from cnndsl.cli import main
from cnndsl.diagnostics import Code

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


def test_input_sizes_past_2_62_are_a_diagnostic_not_a_traceback(
        capsys: pytest.CaptureFixture[str]) -> None:
    # It raised cnndsl.elaborate._Fail, from the CLI and from check(), which never raises; a
    # flag value out of bounds is a usage error (exit 2).
    out = io.StringIO()
    assert main(["check", str(LENET), "--input", "1x4611686018427387905x32"], out=out) == 2
    shown = out.getvalue() + capsys.readouterr().err
    assert "larger than the limit of 2^62 (4,611,686,018,427,387,904)" in shown
    result = cnndsl.check(LENET, input="1x4611686018427387905x32")
    (diagnostic,) = result.diagnostics
    assert diagnostic.code is Code.LIMIT and not result.ok


@pytest.mark.parametrize(("options", "code", "words"), [
    ({"sizes": {"H": 9.2e18}}, Code.BAD_VALUE, "size H must be a whole number"),
    ({"sizes": {"H": 2**63}}, Code.LIMIT, "limit of 2^62"),
    ({"sizes": {"H": 0}}, Code.BAD_VALUE, "above zero"),
    ({"params": {"classes": 2**70}}, Code.LIMIT, "limit of 2^62"),
    ({"params": {"classes": float("inf")}}, Code.BAD_VALUE, "finite number"),
    ({"params": {"classes": {"a": 1}}}, Code.BAD_VALUE, "got dict"),
    ({"input": "H=" + "9" * 40}, Code.BAD_VALUE, "cannot read input size"),
])
def test_overrides_are_checked_before_elaboration(options: dict[str, object], code: Code,
                                                  words: str) -> None:
    result = cnndsl.check(LENET, **options)  # type: ignore[arg-type]
    (diagnostic,) = result.diagnostics
    assert diagnostic.code is code and words in diagnostic.message, diagnostic.message
