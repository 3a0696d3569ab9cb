"""Diagnostics for people and for CI: compiler text, JSON, SARIF 2.1.0 and GitHub annotations."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cnndsl.diagnostics import Code, Diagnostic, render_all

FORMATS = ("text", "json", "sarif", "github")
_RULES = list(Code)


def render(diagnostics: Sequence[Diagnostic], format: str,
           sources: dict[str, str] | None = None) -> str:
    """Diagnostics in one of FORMATS; an empty string when there is nothing to report."""
    if format == "text":
        return render_all(diagnostics, sources) + "\n" if diagnostics else ""
    if format == "json":
        return json.dumps([d.to_json() for d in diagnostics], indent=2) + "\n"
    if format == "sarif":
        return json.dumps(sarif_log(diagnostics), indent=2) + "\n"
    if format == "github":
        return "".join(github_command(d) + "\n" for d in diagnostics)
    raise ValueError(f"unknown diagnostics format {format!r}; choose from {', '.join(FORMATS)}")


# SARIF ----------------------------------------------------------------------------------------


def _version() -> str:
    from cnndsl import __version__

    return __version__


def _uri(file: str) -> str:
    """A file name as a SARIF artifact URI: relative names stay relative, with '/' separators."""
    path = Path(file)
    if path.is_absolute():
        return path.as_uri()
    return quote(file.replace("\\", "/"), safe="/")


def _rule(code: Code) -> dict[str, Any]:
    return {
        "id": code.id,
        "name": code.slug,
        "shortDescription": {"text": code.slug.replace("-", " ")},
        "defaultConfiguration": {"level": "warning" if code is Code.UNUSED_NAME else "error"},
    }


def _message(diagnostic: Diagnostic) -> str:
    return "\n".join([diagnostic.message, *(f"note: {note}" for note in diagnostic.notes)])


def sarif_result(diagnostic: Diagnostic) -> dict[str, Any]:
    """One SARIF ``result`` object (its rule refers into ``sarif_log``'s rule table)."""
    span = diagnostic.span
    region = {
        "startLine": span.line,
        "startColumn": span.col,
        "endLine": max(span.end_line, span.line),
        "endColumn": max(span.end_col, 1),
    }
    return {
        "ruleId": diagnostic.code.id,
        "ruleIndex": _RULES.index(diagnostic.code),
        "level": "warning" if diagnostic.severity == "warning" else "error",
        "message": {"text": _message(diagnostic)},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": _uri(span.file)},
            "region": region,
        }}],
    }


def sarif_log(diagnostics: Iterable[Diagnostic]) -> dict[str, Any]:
    """A SARIF 2.1.0 log of one run: the tool, every rule cnndsl has, and one result each."""
    return {
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "cnndsl",
                "version": _version(),
                "rules": [_rule(code) for code in _RULES],
            }},
            # Columns count characters (code points) of the line, as cnndsl's spans do.
            "columnKind": "unicodeCodePoints",
            "results": [sarif_result(d) for d in diagnostics],
        }],
    }


# GitHub workflow commands ---------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def github_command(diagnostic: Diagnostic) -> str:
    """``::error file=F,line=L,col=C,endLine=L,endColumn=C,title=T::message`` for one diagnostic.

    Columns are sent only for a span on one line (GitHub ignores them otherwise);
    ``endColumn`` is the last column of the span, inclusive.
    """
    span = diagnostic.span
    command = "warning" if diagnostic.severity == "warning" else "error"
    properties = [("file", span.file), ("line", str(span.line))]
    end_line = max(span.end_line, span.line)
    if end_line == span.line:
        last = max(span.end_col - 1, span.col)
        properties += [("col", str(span.col)), ("endLine", str(end_line)),
                       ("endColumn", str(last))]
    else:
        properties.append(("endLine", str(end_line)))
    properties.append(("title", f"{diagnostic.code.slug} [{diagnostic.code.id}]"))
    joined = ",".join(f"{key}={_escape_property(value)}" for key, value in properties)
    return f"::{command} {joined}::{_escape_data(_message(diagnostic))}"
