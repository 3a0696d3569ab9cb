"""The front end as one call: read a spec, elaborate, infer shapes, count, check expectations."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnndsl import ir
from cnndsl.analysis import params as param_analysis
from cnndsl.analysis import receptive
from cnndsl.diagnostics import CnnError, Code, Diagnostic, Reporter, Span
from cnndsl.expectations import TENSOR_SUBJECTS, check_expects
from cnndsl.frontend import elaborate
from cnndsl.frontend.imports import Loader
from cnndsl.names import check_names
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


MAX_SIZE = 2**62  # the elaborator's integer bound: sizes past it overflow int64 at once
MAX_WORD = 1000  # characters of a word given as a parameter value
MAX_ITEMS = 64  # items of a tuple given as a parameter value, at each of up to 3 levels


class OverrideError(ValueError):
    """An ``input=``, ``sizes=`` or ``params=`` value that cannot be used, with the code."""

    def __init__(self, code: Code, message: str):
        super().__init__(message)
        self.code = code


def _size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OverrideError(Code.BAD_VALUE,
                            f"size {name} must be a whole number, got {type(value).__name__}")
    if value <= 0:
        raise OverrideError(Code.BAD_VALUE, f"size {name} must be above zero, got {value}")
    if value > MAX_SIZE:
        raise OverrideError(Code.LIMIT, f"size {name} is larger than the limit of 2^62 "
                            f"({MAX_SIZE:,})")
    return value


def parse_input_sizes(text: str | None) -> tuple[dict[str, int], tuple[int, ...] | None]:
    """``H=512,W=512`` binds symbols; ``3x512x512`` replaces the first input's size.

    Raises OverrideError (a ValueError) for text it cannot read and sizes out of 1 to 2^62.
    """
    if not text:
        return {}, None
    text = text.strip()
    shown = text[:60]
    if re.fullmatch(r"\d{1,30}(\s*x\s*\d{1,30}){0,7}", text):
        parts = re.split(r"\s*x\s*", text)
        dims = tuple(_size(f"#{index + 1} of --input", int(part))
                     for index, part in enumerate(parts))
        return {}, dims
    sizes: dict[str, int] = {}
    for part in text.split(",")[:64]:
        name, sep, value = part.partition("=")
        value = value.strip()
        if not sep or not name.strip().isidentifier() or not value.isdigit() or len(value) > 30:
            raise OverrideError(Code.BAD_VALUE, f"cannot read input size {part[:60]!r}; write "
                                "H=512,W=512 or 3x512x512")
        sizes[name.strip()] = _size(name.strip(), int(value))
    if text.count(",") >= 64:
        raise OverrideError(Code.LIMIT, f"more than 64 sizes in {shown!r}")
    return sizes, None


def _check_sizes(sizes: dict[str, Any]) -> dict[str, int]:
    if not isinstance(sizes, dict):
        raise OverrideError(Code.BAD_VALUE, "sizes must be a dict of names to whole numbers")
    checked: dict[str, int] = {}
    for name, value in sizes.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise OverrideError(Code.BAD_VALUE, f"a size name must be a name, got {name!r:.60}")
        checked[name] = _size(name, value)
    return checked


def _check_value(name: str, value: Any, depth: int = 0) -> Any:
    # What --set can give (a number or a word), and tuples of numbers as sizes like 3x3 are.
    if isinstance(value, bool) or value is None:
        raise OverrideError(Code.BAD_VALUE, f"parameter '{name}' must be a number, a word or a "
                            f"tuple of numbers, got {value!r}")
    if isinstance(value, int):
        if abs(value) > MAX_SIZE:
            raise OverrideError(Code.LIMIT, f"parameter '{name}' is beyond the limit of 2^62 "
                                f"({MAX_SIZE:,})")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_SIZE:
            raise OverrideError(Code.BAD_VALUE, f"parameter '{name}' must be a finite number "
                                f"within 2^62, got {value!r}")
        return value
    if isinstance(value, str):
        if len(value) > MAX_WORD:
            raise OverrideError(Code.LIMIT, f"parameter '{name}' is longer than {MAX_WORD} "
                                "characters")
        return value
    if isinstance(value, tuple | list) and 0 < len(value) <= MAX_ITEMS and depth < 3:
        for item in value:  # anchors are tuples of pairs: (10, 14), (23, 27), ...
            if isinstance(item, str):
                raise OverrideError(Code.BAD_VALUE, f"parameter '{name}' holds a word in a tuple")
            _check_value(name, item, depth + 1)
        return value
    raise OverrideError(Code.BAD_VALUE, f"parameter '{name}' must be a number, a word or a "
                        f"tuple of up to {MAX_ITEMS} numbers or tuples, got "
                        f"{type(value).__name__}")


def _check_params(params: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise OverrideError(Code.BAD_VALUE, "params must be a dict of names to values")
    checked: dict[str, Any] = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise OverrideError(Code.BAD_VALUE,
                                f"a parameter name must be a name, got {name!r:.60}")
        checked[name] = _check_value(name, value)
    return checked


def _read(source: str | Path) -> tuple[str, str]:
    if isinstance(source, Path) or (
        isinstance(source, str) and "\n" not in source and source.endswith(".cnn")
    ):
        try:
            return read_source(Path(source)), str(source)
        except SourceError as error:
            message = error.reason if error.code is Code.LIMIT else \
                f"cannot read {source}: {error.reason}"
            span = Span(file=str(source), line=error.line, col=error.col, end_line=error.line,
                        end_col=error.col + 1)
            raise CnnError([Diagnostic(error.code, span, message)]) from None
    return str(source), "<string>"


def check(source: str | Path, *, network: str | None = None, input: str | None = None,
          sizes: dict[str, int] | None = None, params: dict[str, Any] | None = None,
          file: str | None = None, allow_imports: Sequence[str | Path] = ()) -> CheckResult:
    """Check a spec (a path or its text); never raises for problems in the spec.

    Its imports may read ``.cnn`` files in its own directory tree (the working directory's for
    text) and in the directories of ``allow_imports``; nothing else is opened.
    """
    try:
        text, name = _read(source)
    except CnnError as error:
        return CheckResult(str(source), None, error.diagnostics)
    return check_text(text, file or name, network=network, input=input, sizes=sizes,
                      params=params, allow_imports=allow_imports)


def check_text(text: str, file: str = "<string>", *, network: str | None = None,
               input: str | None = None, sizes: dict[str, int] | None = None,
               params: dict[str, Any] | None = None, loader: Loader | None = None,
               allow_imports: Sequence[str | Path] = (),
               receptive_fields: bool = True) -> CheckResult:
    """Check a spec's text, named ``file`` (imports are relative to it); never raises.

    With ``receptive_fields`` False, nodes keep ``receptive_field`` None unless an ``expect``
    line needs it: the diagnostics are the same, and the language server computes the fields
    when a hover shows one (on 10,000 layers they are most of a check).
    """
    name = file
    try:
        bound, override = parse_input_sizes(input)
        bound.update(_check_sizes(sizes or {}))
        params = _check_params(params or {}) or None
    except OverrideError as error:
        span = Span(file=name)
        return CheckResult(name, None, [Diagnostic(error.code, span, str(error))])
    try:
        result, warnings, expects, sources = elaborate(
            text, name, network=network, sizes=bound, arguments=params, input_override=override,
            allow_imports=allow_imports, loader=loader,
        )
    except CnnError as error:  # the sources that may be shown: a file that is not a spec is not
        return CheckResult(name, None, error.diagnostics, error.sources)
    reporter = Reporter(list(warnings))
    check_names(result, reporter)
    if reporter.errors:
        return CheckResult(name, None, reporter.diagnostics, sources)
    param_analysis.annotate(result)
    if receptive_fields or any(e.subject in TENSOR_SUBJECTS for e in expects):
        receptive.annotate(result)
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
