"""Formatting as text edits: they give ``cnndsl fmt``'s text, and a range keeps the meaning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsp_helpers import apply
from lsprotocol import types

from cnndsl.lsp.formatting import formatting
from cnndsl.syntax.format import format_source

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["resnet50.cnn", "googlenet.cnn", "yolo_tiny.cnn", "blocks/resnet.cnn", "xception.cnn"]
CANONICAL = {name: format_source((ROOT / "specs" / name).read_text()) for name in NAMES}
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
_PIECES = re.compile(r'"[^"\n]*"|#[^\n]*| +|[^ "#]+')


@st.composite
def variant(draw: st.DrawFn, text: str) -> str:
    """The spec with the spaces and indentation of some lines changed, maybe CRLF ends."""
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        if body and draw(st.integers(0, 4)) == 0:
            pieces = [draw(st.sampled_from([" ", "   "])) if p.startswith(" ") else p
                      for p in _PIECES.findall(body)]
            line = draw(st.sampled_from(["", " ", "     "])) + "".join(pieces) + " "
        lines.append(line)
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(data=st.data())
def test_the_edits_give_the_formatted_text(name: str, data: st.DataObject) -> None:
    text = data.draw(variant(CANONICAL[name]))
    eol = "\r\n" if "\r\n" in text else "\n"
    edits = formatting(text)
    assert apply(text, edits) == format_source(text).replace("\n", eol)
    assert (edits == []) == (text == CANONICAL[name].replace("\n", eol))


@pytest.mark.parametrize("name", NAMES[:3])
@SETTINGS
@given(data=st.data())
def test_a_range_is_formatted_alone_and_keeps_the_meaning(name: str,
                                                        data: st.DataObject) -> None:
    text = data.draw(variant(CANONICAL[name]))
    count = text.count("\n")
    first = data.draw(st.integers(0, count))
    last = data.draw(st.integers(first, min(count, first + 6)))
    wanted = types.Range(start=types.Position(line=first, character=0),
                         end=types.Position(line=last, character=2))
    edits = formatting(text, wanted)
    assert format_source(apply(text, edits)) == CANONICAL[name]  # the same tree and comments
    # Each edit covers changed lines next to the range (or, as a fallback, the whole layout).
    near = all(e.range.start.line <= last and first <= max(e.range.end.line - 1,
                                                           e.range.start.line) for e in edits)
    assert near or edits == formatting(text)


def test_a_selection_changes_only_its_lines() -> None:
    text = CANONICAL["resnet50.cnn"].replace("  bn1: bn\n", "  bn1:   bn\n").replace(
        "  flatten\n", "      flatten   \n")
    line = text[:text.index("bn1:")].count("\n")
    wanted = types.Range(start=types.Position(line=line, character=4),
                         end=types.Position(line=line + 1, character=0))
    result = apply(text, formatting(text, wanted))
    assert "  bn1: bn\n" in result and "      flatten   \n" in result
    assert apply(result, formatting(result)) == CANONICAL["resnet50.cnn"]


def test_a_text_that_does_not_parse_gets_no_edits() -> None:
    assert formatting("network n {\n  input x: 3 x 8 x 8\n  relu (\n}\n") == []


def test_the_end_of_a_text_without_a_final_line_end() -> None:
    text = "network n {\n input x: 3x8x8\n relu}"
    edits = formatting(text)
    assert edits[-1].range.end == types.Position(line=2, character=6)
    assert apply(text, edits) == "network n {\n  input x: 3 x 8 x 8\n  relu\n}\n"
