"""Diagnostics rendered for CI: SARIF 2.1.0 valid against the official schema, GitHub commands.

The schema in tests/data/sarif-schema-2.1.0.json is OASIS's SARIF 2.1.0 (errata 01) JSON
schema, copied unchanged from github.com/oasis-tcs/sarif-spec (sarif-2.1/schema/).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import cnndsl
from cnndsl.diagnostics import Code, Diagnostic, Span
from cnndsl.reporting import FORMATS, github_command, render, sarif_log

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text("utf-8"))
BAD = ROOT / "tests" / "specs" / "bad"


def _diagnostics() -> list[Diagnostic]:
    found = []
    for path in sorted(BAD.glob("*.cnn")):
        found.extend(cnndsl.check(path).diagnostics)
    return found


def test_sarif_of_every_bad_spec_validates_against_the_schema() -> None:
    diagnostics = _diagnostics()
    assert len({d.code for d in diagnostics}) >= 15
    log = sarif_log(diagnostics)
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(log)]
    assert not errors, errors[:5]
    run = log["runs"][0]
    assert len(run["results"]) == len(diagnostics)
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_sarif_result_carries_the_span_and_notes() -> None:
    result = cnndsl.check(BAD / "channel_mismatch_add.cnn")
    error = result.diagnostics[0]
    log = json.loads(render(result.diagnostics, "sarif"))
    sarif = log["runs"][0]["results"][0]
    region = sarif["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": error.span.line, "startColumn": error.span.col,
                      "endLine": error.span.end_line, "endColumn": error.span.end_col}
    assert sarif["ruleId"] == error.code.id and sarif["level"] == "error"
    assert sarif["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        (BAD / "channel_mismatch_add.cnn").as_uri()
    assert sarif["message"]["text"].startswith(error.message)


def test_sarif_uris_of_relative_names_stay_relative_and_are_encoded() -> None:
    diagnostic = Diagnostic(Code.SYNTAX, Span(file="my specs/a,b.cnn"), "boom")
    location = sarif_log([diagnostic])["runs"][0]["results"][0]["locations"][0]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "my%20specs/a%2Cb.cnn"


def test_github_command_form() -> None:
    span = Span(file="specs/a.cnn", line=5, col=10, end_line=5, end_col=19)
    diagnostic = Diagnostic(Code.CHANNEL_MISMATCH, span, "cannot add 64 and 128 channels",
                            notes=("did you mean 'b'?",))
    assert github_command(diagnostic) == (
        "::error file=specs/a.cnn,line=5,col=10,endLine=5,endColumn=18,"
        "title=channel-mismatch [E201]::cannot add 64 and 128 channels%0Anote: did you mean 'b'?"
    )


def test_github_escapes_data_and_properties() -> None:
    span = Span(file="dir,x/a:b%.cnn", line=2, col=1, end_line=4, end_col=2)
    diagnostic = Diagnostic(Code.BAD_VALUE, span, "100% bad: a,b\r\nnext", severity="warning")
    assert github_command(diagnostic) == (
        "::warning file=dir%2Cx/a%3Ab%25.cnn,line=2,endLine=4,title=bad-value [E110]"
        "::100%25 bad: a,b%0D%0Anext"
    )


@pytest.mark.parametrize("format", FORMATS)
def test_every_format_renders_nothing_or_something(format: str) -> None:
    diagnostics = cnndsl.check(BAD / "several_errors.cnn").diagnostics
    assert render(diagnostics, format).strip()
    if format in ("text", "github"):
        assert render([], format) == ""


def test_json_is_the_stable_diagnostic_form() -> None:
    diagnostics = cnndsl.check(BAD / "several_errors.cnn").diagnostics
    assert json.loads(render(diagnostics, "json")) == [d.to_json() for d in diagnostics]
