"""The front end as one call: read a spec, elaborate, infer shapes, count, check expectations."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnndsl import ir
from cnndsl.analysis import params as param_analysis
from cnndsl.diagnostics import CnnError, Code, Diagnostic, Reporter, Span
from cnndsl.expectations import check_expects
from cnndsl.frontend import elaborate
from cnndsl.frontend.imports import Loader
from cnndsl.syntax.parser import SourceError, read_source


@dataclass
class CheckResult:
    """What checking one spec found: the network (None when it has errors) and diagnostics."""

    file: str
    network: ir.Network | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when there are no errors (warnings allowed)."""
        return self.network is not None and not any(
            d.severity == "error" for d in self.diagnostics
        )


def parse_input_sizes(text: str | None) -> tuple[dict[str, int], tuple[int, ...] | None]:
    """``H=512,W=512`` binds symbols; ``3x512x512`` replaces the first input's size."""
    if not text:
        return {}, None
    text = text.strip()
    if re.fullmatch(r"\d+(\s*x\s*\d+)*", text):
        dims = tuple(int(part) for part in re.split(r"\s*x\s*", text))
        if any(dim <= 0 for dim in dims):
            raise ValueError(f"input sizes must be above zero, got {text!r}")
        return {}, dims
    sizes: dict[str, int] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip().isidentifier() or not value.strip().isdigit():
            raise ValueError(f"cannot read input size {part!r}; write H=512,W=512 or 3x512x512")
        sizes[name.strip()] = int(value)
    if any(size <= 0 for size in sizes.values()):
        raise ValueError(f"input sizes must be above zero, got {text!r}")
    return sizes, None


def _read(source: str | Path) -> tuple[str, str]:
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith(".cnn")
    ):
        try:
            return read_source(Path(source)), str(source)
        except SourceError as error:
            message = error.reason if error.code is Code.LIMIT else \
                f"cannot read {source}: {error.reason}"
            span = Span(file=str(source))
            raise CnnError([Diagnostic(error.code, span, message)]) from None
    return str(source), "<string>"


def check(source: str | Path, *, network: str | None = None, input: str | None = None,
          sizes: dict[str, int] | None = None, params: dict[str, Any] | None = None,
          file: str | None = None) -> CheckResult:
    """Check a spec (a path or its text); never raises for problems in the spec."""
    try:
        text, name = _read(source)
    except CnnError as error:
        return CheckResult(str(source), None, error.diagnostics)
    return check_text(text, file or name, network=network, input=input, sizes=sizes,
                      params=params)


def check_text(text: str, file: str = "<string>", *, network: str | None = None,
               input: str | None = None, sizes: dict[str, int] | None = None,
               params: dict[str, Any] | None = None, loader: Loader | None = None,
               ) -> CheckResult:
    """Check a spec's text, named ``file`` (imports are relative to it); never raises."""
    name = file
    try:
        bound, override = parse_input_sizes(input)
    except ValueError as error:
        span = Span(file=name)
        return CheckResult(name, None, [Diagnostic(Code.BAD_VALUE, span, str(error))])
    bound.update(sizes or {})
    try:
        result, warnings, expects, sources = elaborate(
            text, name, network=network, sizes=bound, arguments=params, input_override=override,
            loader=loader,
        )
    except CnnError as error:
        return CheckResult(name, None, error.diagnostics, {name: text, **error.sources})
    param_analysis.annotate(result)
    reporter = Reporter(list(warnings))
    result.expects = check_expects(result, expects, reporter, bound)
    diagnostics = reporter.diagnostics
    if params or override is not None:
        diagnostics = [_relaxed(d) for d in diagnostics]
    return CheckResult(name, result, diagnostics, sources)


def _relaxed(diagnostic: Diagnostic) -> Diagnostic:
    # expect lines describe the spec as written; with --set or a replaced input size they may
    # not hold, and that is information, not an error of the spec.
    if diagnostic.code is not Code.EXPECT_FAILED:
        return diagnostic
    note = "the spec was checked with --set or --input overrides"
    return Diagnostic(diagnostic.code, diagnostic.span, diagnostic.message, "warning",
                      (*diagnostic.notes, note))


def load(source: str | Path, **options: Any) -> ir.Network:
    """The checked IR of a spec; raises CnnError listing every error."""
    result = check(source, **options)
    if not result.ok or result.network is None:
        raise CnnError(result.diagnostics, result.sources)
    return result.network
