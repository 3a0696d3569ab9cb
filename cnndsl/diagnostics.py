"""Positioned diagnostics: spans, error codes, the error hierarchy and rendering."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True, kw_only=True)
class Span:
    """A region of source text; lines and columns are 1-based, the end is exclusive."""

    file: str = "<string>"
    line: int = 1
    col: int = 1
    end_line: int = 1
    end_col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span()


class Code(Enum):
    """Every error a user can cause, with a stable code and a slug."""

    SYNTAX = ("E001", "syntax")
    UNEXPECTED_END = ("E002", "unexpected-end")
    IO = ("E003", "io")
    LIMIT = ("E004", "resource-limit")
    IMPORT_CYCLE = ("E005", "import-cycle")
    IMPORT_DENIED = ("E006", "import-denied")
    UNKNOWN_LAYER = ("E101", "unknown-layer")
    UNKNOWN_PARAMETER = ("E102", "unknown-parameter")
    ARGUMENT_TYPE = ("E103", "argument-type")
    MISSING_ARGUMENT = ("E104", "missing-argument")
    TOO_MANY_ARGUMENTS = ("E105", "too-many-arguments")
    UNDEFINED_NAME = ("E106", "undefined-name")
    DUPLICATE_NAME = ("E107", "duplicate-name")
    UNUSED_NAME = ("E108", "unused-name")
    INEXACT_DIVISION = ("E109", "inexact-division")
    BAD_VALUE = ("E110", "bad-value")
    NO_NETWORK = ("E111", "no-network")
    RESERVED_NAME = ("E112", "reserved-name")
    CHANNEL_MISMATCH = ("E201", "channel-mismatch")
    SPATIAL_MISMATCH = ("E202", "spatial-mismatch")
    KERNEL_TOO_LARGE = ("E203", "kernel-too-large")
    EMPTY_OUTPUT = ("E204", "empty-output")
    RANK_MISMATCH = ("E205", "rank-mismatch")
    SHAPE_MISMATCH = ("E206", "shape-mismatch")
    HEAD_MISMATCH = ("E207", "head-mismatch")
    STRIDE_MISMATCH = ("E208", "stride-mismatch")
    EXPECT_FAILED = ("E301", "expect-failed")
    UNSUPPORTED = ("E401", "unsupported")
    UNFORMATTED = ("E501", "unformatted")  # fmt --check: not in the canonical layout
    WEIGHTS = ("E502", "weights")  # a checkpoint that does not fit a network

    @property
    def id(self) -> str:
        """The short code, e.g. ``E201``."""
        return self.value[0]

    @property
    def slug(self) -> str:
        """The readable code, e.g. ``channel-mismatch``."""
        return self.value[1]


@dataclass(frozen=True)
class Diagnostic:
    """One message about the source: a code, a span, a message and optional notes."""

    code: Code
    span: Span
    message: str
    severity: str = "error"
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The stable JSON form documented in the README."""
        return {
            "file": self.span.file,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "severity": self.severity,
            "code": self.code.id,
            "name": self.code.slug,
            "message": self.message,
            "notes": list(self.notes),
        }


class CnnError(Exception):
    """Raised when a phase ends with errors; carries every diagnostic of that phase."""

    def __init__(self, diagnostics: Sequence[Diagnostic],
                 sources: dict[str, str] | None = None):
        self.diagnostics = list(diagnostics)
        self.sources = dict(sources or {})  # file -> text, so that imported lines can be shown
        super().__init__("\n".join(f"{d.span}: {d.message} [{d.code.slug}]" for d in diagnostics))


@dataclass
class Reporter:
    """Collects the diagnostics of a phase so that all of them are reported, not only the first."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, code: Code, span: Span, message: str, *notes: str) -> None:
        """Record an error; empty notes are dropped, so callers may pass one conditionally."""
        self.diagnostics.append(Diagnostic(code, span, message, "error", _kept(notes)))

    def warning(self, code: Code, span: Span, message: str, *notes: str) -> None:
        """Record a warning; empty notes are dropped."""
        self.diagnostics.append(Diagnostic(code, span, message, "warning", _kept(notes)))

    @property
    def errors(self) -> list[Diagnostic]:
        """The diagnostics of severity error."""
        return [d for d in self.diagnostics if d.severity == "error"]

    def raise_if_errors(self) -> None:
        """End the phase when it found errors."""
        if self.errors:
            raise CnnError(self.diagnostics)


def render(diagnostic: Diagnostic, sources: dict[str, str] | None = None) -> str:
    """Render like a compiler: ``file:line:col: error: message [code]``, the line and a caret."""
    return render_all([diagnostic], sources)


def _render(diagnostic: Diagnostic, source_lines: list[str] | None) -> str:
    span = diagnostic.span
    head = (
        f"{span.file}:{span.line}:{span.col}: {diagnostic.severity}: "
        f"{diagnostic.message} [{diagnostic.code.slug}]"
    )
    lines = [head]
    if source_lines is not None and 1 <= span.line <= len(source_lines):
        line = source_lines[span.line - 1].replace("\t", " ")
        one_line = span.end_line == span.line
        width = span.end_col - span.col if one_line else len(line) - span.col + 1
        lines.append(f"  {line}")
        lines.append("  " + " " * (span.col - 1) + "^" + "~" * max(0, width - 1))
    lines.extend(f"  note: {note}" for note in diagnostic.notes)
    return "\n".join(lines)


def render_all(diagnostics: Iterable[Diagnostic], sources: dict[str, str] | None = None) -> str:
    """Render several diagnostics, one block each."""
    texts = sources or {}
    split: dict[str, list[str]] = {}  # each file is split into lines once, not per diagnostic
    blocks = []
    for diagnostic in diagnostics:
        file = diagnostic.span.file
        if file not in split and file in texts:
            split[file] = source_lines(texts[file])
        blocks.append(_render(diagnostic, split.get(file)))
    return "\n".join(blocks)


def source_lines(text: str) -> list[str]:
    """A text's lines as the lexer counts them, where only a line feed ends a line.

    ``str.splitlines`` also breaks at form feeds, U+2028 and other characters a comment may
    hold, which put the wrong line under the caret.
    """
    return [line.removesuffix("\r") for line in text.removesuffix("\n").split("\n")]


def to_json(diagnostics: Iterable[Diagnostic]) -> str:
    """Serialise diagnostics as a JSON array."""
    return json.dumps([d.to_json() for d in diagnostics], indent=2)


def _kept(notes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(note for note in notes if note)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """The note "did you mean 'x'?" for a misspelt name, or "" when nothing is close."""
    hint = suggest(name, candidates)
    return f"did you mean '{hint}'?" if hint else ""


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt name, for a "did you mean" note."""
    import difflib

    matches = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return matches[0] if matches else None
