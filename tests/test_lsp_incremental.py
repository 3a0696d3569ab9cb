"""Reparsing around an edit gives the module a full parse gives, or declines (hypothesis)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnndsl.diagnostics import CnnError
from cnndsl.lsp.incremental import reparse
from cnndsl.syntax.parser import parse

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").rglob("*.cnn"))
TEXTS = {path.name: path.read_text() for path in SPECS}

sys.path.insert(0, str(ROOT / "benchmarks"))
from check_speed import generated_spec  # noqa: E402

PIECES = ["conv 64 3x3", " -> relu", "\n", "\n  ", "bn", "x: ", "# note\n", "}", "{", "(",
          ")", "residual {\n conv 8 1x1\n}", "->", "|", ";", "7", "pad 1", "/2", "relu",
          "expect params == 1", "  y: add(a, b)\n", '"', "const c = 2\n"]


def _full(text: str, file: str) -> object:
    try:
        return parse(text, file)
    except CnnError:
        return None


def _edit(text: str, data: st.DataObject) -> str:
    start = data.draw(st.integers(0, len(text)), label="start")
    length = data.draw(st.integers(0, 40), label="removed")
    insert = data.draw(st.lists(st.sampled_from(PIECES), max_size=3).map("".join), label="new")
    return text[:start] + insert + text[start + length:]


@settings(deadline=None, max_examples=300)
@given(st.sampled_from(sorted(TEXTS)), st.data())
def test_an_edit_reparses_to_what_a_full_parse_gives(name: str, data: st.DataObject) -> None:
    text = TEXTS[name]
    old = parse(text, name)
    new_text = _edit(text, data)
    module = reparse(text, old, new_text)
    full = _full(new_text, name)
    if module is not None:
        assert full is not None, "a text that does not parse was reparsed"
        assert module.items == full.items  # type: ignore[attr-defined]


@settings(deadline=None, max_examples=50)
@given(st.data())
def test_edits_one_after_another_stay_equal(data: st.DataObject) -> None:
    text = TEXTS["googlenet.cnn"]
    module = parse(text, "g")
    for _ in range(4):
        new_text = _edit(text, data)
        reparsed = reparse(text, module, new_text)
        full = _full(new_text, "g")
        if reparsed is not None:
            assert full is not None and reparsed.items == full.items  # type: ignore[attr-defined]
        if full is not None:
            text, module = new_text, reparsed or full  # type: ignore[assignment]


@pytest.mark.parametrize("edit", [
    ("conv 64 7x7", "conv 0 7x7"),           # one statement, same lines
    ("  bn1: bn\n", "  bn1: bn\n  relu\n"),  # a line more: later spans move down
    ("  relu: relu\n", ""),                   # a line less
])
def test_edits_inside_a_body_are_reparsed_not_declined(edit: tuple[str, str]) -> None:
    text = TEXTS["resnet50.cnn"]
    new_text = text.replace(*edit)
    module = reparse(text, parse(text, "r"), new_text)
    assert module is not None
    assert module.items == parse(new_text, "r").items


def test_a_header_edit_is_declined() -> None:
    text = TEXTS["resnet50.cnn"]
    new_text = text.replace("network resnet50(classes = 1000)", "network resnet(classes = 10)")
    assert reparse(text, parse(text, "r"), new_text) is None


def test_a_long_spec_keeps_the_untouched_statements() -> None:
    text = generated_spec(2000)
    old = parse(text, "g")
    new_text = text.replace("s100: unit(16)", "s100: unit(17)")
    module = reparse(text, old, new_text)
    assert module is not None and module.items == parse(new_text, "g").items
    body_old = old.items[1].body.statements  # type: ignore[union-attr]
    body_new = module.items[1].body.statements  # type: ignore[union-attr]
    assert body_new[5] is body_old[5]  # reused, not parsed again
