"""The pytest plugin, run by pytester: opt-in, one item per expect line, diagnostics shown."""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent

GOOD_AND_BAD = """\
network small {
  input image: 3 x 8 x 8
  conv 4 3x3 pad 1 -> relu
  head: gap -> flatten -> linear 2
  expect params == 122
  expect params == 999
  expect head == N x 2
}
"""


def _plugin_args() -> list[str]:
    # Installed, the entry point loads the plugin; from a source checkout, load it by name.
    names = {e.name for e in importlib.metadata.entry_points(group="pytest11")}
    return [] if "cnndsl" in names else ["-p", "cnndsl.pytest_plugin"]


def test_entry_point_is_declared() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '[project.entry-points.pytest11]\ncnndsl = "cnndsl.pytest_plugin"' in text


def test_one_item_per_expect_line_and_failures_show_the_diagnostic(
        pytester: pytest.Pytester) -> None:
    pytester.makefile(".cnn", small=GOOD_AND_BAD)
    result = pytester.runpytest("--cnndsl", "-v", *_plugin_args())
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*small.cnn::small::params == 122 PASSED*",
        "*small.cnn::small::params == 999 FAILED*",
        "*small.cnn::small::head == N x 2 PASSED*",
    ])
    result.stdout.fnmatch_lines(["*small.cnn:6:3: error: *expect-failed*"])
    assert "Traceback" not in result.stdout.str()


def test_not_collected_unless_asked(pytester: pytest.Pytester) -> None:
    pytester.makefile(".cnn", small=GOOD_AND_BAD)
    result = pytester.runpytest(*_plugin_args())
    result.assert_outcomes()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_ini_option_switches_it_on(pytester: pytest.Pytester) -> None:
    pytester.makefile(".cnn", small=GOOD_AND_BAD)
    pytester.makeini("[pytest]\ncnndsl = true\n")
    pytester.runpytest(*_plugin_args()).assert_outcomes(passed=2, failed=1)


def test_a_spec_with_errors_is_one_failing_item(pytester: pytest.Pytester) -> None:
    shutil.copy(ROOT / "tests" / "specs" / "bad" / "channel_mismatch_add.cnn",
                pytester.path / "broken.cnn")
    result = pytester.runpytest("--cnndsl", "-v", *_plugin_args())
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*broken.cnn::check FAILED*", "*[[]channel-mismatch[]]*"])


def test_every_network_and_a_library(pytester: pytest.Pytester) -> None:
    pytester.makefile(".cnn", two="""\
network a {
  input x: 3 x 4 x 4
  conv 2 1x1
  expect params == 8
}

network b {
  input x: 3 x 4 x 4
  flatten
}
""", blocks="block stem(width) {\n  conv width 3x3 -> bn -> relu\n}\n")
    result = pytester.runpytest("--cnndsl", "-v", *_plugin_args())
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*blocks.cnn::library PASSED*"])
    result.stdout.fnmatch_lines(["*two.cnn::a::params == 8 PASSED*"])
    result.stdout.fnmatch_lines(["*two.cnn::b PASSED*"])
