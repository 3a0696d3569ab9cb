"""Syntax errors as the parser reports them: all of them, each where it is, within bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnndsl import compiler
from cnndsl.diagnostics import CnnError, Code, Diagnostic, render_all
from cnndsl.syntax import parser
from cnndsl.syntax.parser import MAX_SYNTAX_ERRORS, MAX_TOKENS, parse


def errors(text: str) -> list[Diagnostic]:
    with pytest.raises(CnnError) as caught:
        parse(text)
    return caught.value.diagnostics


def where(diagnostics: list[Diagnostic]) -> list[tuple[int, int, Code]]:
    return [(d.span.line, d.span.col, d.code) for d in diagnostics]


def test_every_syntax_error_is_reported_not_only_the_first() -> None:
    text = ("network t {\n"
            "  input x: 3 x 8 x 8\n"
            "  conv 8 3x3 = 2\n"      # a stray '='
            "  relu\n"
            "  conv 8 @ 3x3\n"        # a character the language has no use for
            "  input y: 3 x\n"        # a size cut short
            "  b: conv (3\n"          # an unclosed parenthesis, ended by the line
            "  relu\n"
            "}\n")
    assert where(errors(text)) == [(3, 14, Code.SYNTAX), (5, 10, Code.SYNTAX),
                                   (6, 15, Code.SYNTAX), (7, 13, Code.SYNTAX)]


def test_recovery_skips_a_broken_definition_whole() -> None:
    # The body of a definition whose header is broken is skipped with it: its lines would
    # only give errors that follow from the first.
    text = ("network two(a, = 3) {\n  input image: 3 x 8 x 8\n  relu\n}\n"
            "network t {\n  input x: 3 x 8 x 8\n  relu = 1\n}\n")
    assert where(errors(text)) == [(1, 16, Code.SYNTAX), (7, 8, Code.SYNTAX)]


def test_a_run_of_bad_characters_is_one_error() -> None:
    assert where(errors("network t {\n  input x: 3 x 8 x 8\n  relu @@@@\n}\n")) == [
        (3, 8, Code.SYNTAX)]


def test_a_stray_closing_brace_at_the_top_level_is_reported_once() -> None:
    assert where(errors("network t {\n  input x: 3 x 8 x 8\n}\n}\nconst a = 1 +\n")) == [
        (4, 1, Code.SYNTAX), (5, 14, Code.SYNTAX)]


def test_the_number_of_errors_is_bounded() -> None:
    text = "network t {\n  input x: 3 x 8 x 8\n" + "  relu = 1\n" * 100 + "}\n"
    assert len(errors(text)) == MAX_SYNTAX_ERRORS


def test_an_unclosed_brace_is_reported_at_the_brace() -> None:
    (diagnostic,) = errors("network t {\n  input x: 3 x 8 x 8\n  relu\n")
    assert where([diagnostic]) == [(1, 11, Code.UNEXPECTED_END)]
    assert diagnostic.message == "'{' is never closed"
    assert diagnostic.notes == ("the file ends at line 3 before its '}'",)


def test_the_forgotten_brace_is_found_by_indentation() -> None:
    # The network's '}' closes the residual body; its indentation says it was meant for the
    # network, so the residual's '{' is the one left open.
    text = ("network t {\n  input x: 3 x 8 x 8\n  residual {\n    relu\n"
            "  conv 3 3x3 pad 1\n}\n")
    (diagnostic,) = errors(text)
    assert where([diagnostic]) == [(3, 12, Code.UNEXPECTED_END)]


def test_an_unclosed_parenthesis_at_the_end() -> None:
    (diagnostic,) = errors("const a = (1 + 2")
    assert where([diagnostic]) == [(1, 11, Code.UNEXPECTED_END)]
    assert diagnostic.message == "'(' is never closed"


@pytest.mark.parametrize("separator", ["\f", "\u2028", "\x1c", "\x85", "\v"])
def test_the_caret_line_is_the_lexers_line(separator: str) -> None:
    # str.splitlines() breaks lines at these characters too; the lexer does not, so splitting
    # with it put a different line under the caret.
    text = f"# a comment{separator}with a break\nnetwork t {{\n  conv 8 3x3 = 2\n}}\n"
    result = compiler.check(text)
    (diagnostic,) = result.diagnostics
    assert (diagnostic.span.line, diagnostic.span.col) == (3, 14)
    shown = render_all(result.diagnostics, {"<string>": text}).splitlines()
    assert shown[1] == "    conv 8 3x3 = 2"
    assert shown[2].index("^") == shown[1].index("=")


def test_a_spec_of_too_many_tokens_is_refused_before_parsing() -> None:
    text = "network t {\n  input x: 3 x 8 x 8\n" + "  relu\n" * MAX_TOKENS + "}\n"
    (diagnostic,) = errors(text)
    assert diagnostic.code is Code.LIMIT and f"{MAX_TOKENS:,} tokens" in diagnostic.message
    # Reported where the limit is crossed: about half way, since each line is two tokens.
    assert abs(diagnostic.span.line - MAX_TOKENS // 2) < 10


@pytest.mark.parametrize(("units", "refused"), [(492, False), (493, True)])
def test_the_token_limit_is_exact(monkeypatch: pytest.MonkeyPatch, units: int,
                                  refused: bool) -> None:
    # With a limit of 1,000: 13 tokens of header, 2 a line, 2 for the closing brace and line end.
    monkeypatch.setattr(parser, "MAX_TOKENS", 1000)
    text = "network t {\n  input x: 3 x 8 x 8\n" + "  relu\n" * units + "}\n"
    if refused:
        assert [d.code for d in errors(text)] == [Code.LIMIT]
    else:
        (network,) = parse(text).items
        assert len(network.body.statements) == units + 1


def test_comments_count_as_one_token_per_run() -> None:
    comments = "# a comment line that says a lot, word after word after word\n" * 5000
    text = comments + "network t {\n  input x: 3 x 8 x 8\n  relu\n}\n"
    assert len(parse(text).items) == 1


@pytest.mark.parametrize(("data", "line", "col"), [
    (b"network n {\n  input x: 3 x 8 x 8\n  relu # caf\xc3\xa9 \xff\n}\n", 3, 15),
    (b"\xef\xbb\xbfab\xffc", 1, 3),  # after a byte-order mark, which is no character
    (b"\xc3", 1, 1),  # a sequence cut short by the end of the file
])
def test_invalid_utf8_is_reported_at_the_byte(tmp_path: Path, data: bytes, line: int,
                                               col: int) -> None:
    path = tmp_path / "bad.cnn"
    path.write_bytes(data)
    (diagnostic,) = compiler.check(path).diagnostics
    assert diagnostic.code is Code.IO
    assert (diagnostic.span.line, diagnostic.span.col) == (line, col)
    assert f"line {line}, column {col}" in diagnostic.message
