"""A pytest plugin: ``.cnn`` files as tests, one item per ``expect`` line.

Opt-in, so that a project's deliberately broken specs are not collected by surprise: pass
``--cnndsl`` or set ``cnndsl = true`` in the pytest configuration. Each network of a file gives
one item per ``expect`` line (``spec.cnn::resnet50::params == 25557032``); a failing one shows
the diagnostic. A network without ``expect`` lines, one whose checking failed before its
expectations could be evaluated, and a library (blocks only) each give one item.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cnndsl.diagnostics import Diagnostic, render_all
from cnndsl.workspace import SUFFIX, Unit, check_units


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--cnndsl`` and the ``cnndsl`` ini option."""
    group = parser.getgroup("cnndsl")
    group.addoption("--cnndsl", action="store_true", default=False,
                    help="collect .cnn specs: one test per expect line")
    parser.addini("cnndsl", type="bool", default=False,
                  help="collect .cnn specs (like --cnndsl)")


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("cnndsl") or config.getini("cnndsl"))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect ``*.cnn`` files when the plugin is switched on."""
    if file_path.suffix == SUFFIX and _enabled(parent.config):
        return SpecFile.from_parent(parent, path=file_path)
    return None


class SpecFailure(Exception):
    """An expect line that does not hold, or a spec with errors: carries the diagnostics."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str]):
        super().__init__(render_all(diagnostics, sources))
        self.text = render_all(diagnostics, sources)


class SpecFile(pytest.File):
    """One ``.cnn`` file: its networks' expect lines, or its library."""

    def collect(self) -> Iterator[pytest.Item]:
        """The file's test items."""
        for unit in check_units(str(self.path), {}):
            yield from _items(self, unit)


def _items(parent: SpecFile, unit: Unit) -> Iterator[pytest.Item]:
    result = unit.result
    if unit.kind != "network" or result.network is None:
        name = unit.kind if unit.kind != "network" else "check"
        yield SpecItem.from_parent(parent, name=name, unit=unit, line=None)
        return
    network = result.network
    if not network.expects:
        yield SpecItem.from_parent(parent, name=network.name, unit=unit, line=None)
        return
    for expect in network.expects:
        yield SpecItem.from_parent(parent, name=f"{network.name}::{expect.text}", unit=unit,
                                   line=expect.span.line)


class SpecItem(pytest.Item):
    """One expect line (``line``), or a whole network or library (``line`` None)."""

    def __init__(self, *, unit: Unit, line: int | None, **kwargs: Any):
        super().__init__(**kwargs)
        self.unit = unit
        self.line = line
        # Some plugins' pytest_runtest_call wrappers (pytest-lsp 1.0) assume every item has
        # fixtures and fail on one without: it has none.
        self.funcargs: dict[str, Any] = {}

    def _diagnostics(self) -> list[Diagnostic]:
        diagnostics = self.unit.result.diagnostics
        if self.line is None:
            return [d for d in diagnostics if d.severity == "error"]
        file = self.unit.result.file
        return [d for d in diagnostics if d.span.line == self.line and d.span.file == file
                and d.severity == "error"]

    def runtest(self) -> None:
        """Fail with the diagnostics that concern this item."""
        failing = self._diagnostics()
        if failing:
            raise SpecFailure(failing, self.unit.result.sources)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        """The diagnostics as the compiler prints them, not a traceback."""
        if isinstance(excinfo.value, SpecFailure):
            return excinfo.value.text
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the item is: the file and its expect line."""
        return self.path, (self.line - 1 if self.line else None), self.name
