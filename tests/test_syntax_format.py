"""The formatter: one canonical layout, comments kept, idempotent, and the IR never changes.

Over every spec, every example of docs/language.md and README.md, and every bad spec that
parses: format twice gives the same text, the formatted spec checks to the same IR (positions
aside), and hypothesis variants of the canonical text (whitespace, indentation, blank lines,
arrows moved to the line end, line ends) format back to it exactly. Comments inserted at random
survive, in order. One formatted spec is a golden file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl import ir
from cnndsl.diagnostics import CnnError
from cnndsl.syntax.format import format_source
from cnndsl.syntax.parser import parse

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "fmt_yolo_tiny.cnn"
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def _examples() -> list[tuple[str, str]]:
    found = []
    for path in sorted((ROOT / "specs").rglob("*.cnn")):
        found.append((str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")))
    for doc in ("docs/language.md", "README.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        for index, example in enumerate(re.findall(r"```cnn\n(.*?)```", text, flags=re.S)):
            found.append((f"{doc}#{index}", example))
    for path in sorted((ROOT / "tests" / "specs" / "bad").rglob("*.cnn")):
        text = path.read_text(encoding="utf-8")
        try:
            parse(text)
        except CnnError:
            continue  # a syntax error: nothing to format
        found.append((str(path.relative_to(ROOT)), text))
    return found


EXAMPLES = _examples()
IDS = [name for name, _ in EXAMPLES]


def _without_spans(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_spans(v) for k, v in value.items() if k not in ("span", "line")}
    if isinstance(value, list):
        return [_without_spans(v) for v in value]
    return value


def _checked(text: str, name: str) -> Any:
    # Imports resolve beside the file the text came from.
    file = str(ROOT / name) if not name.startswith(("docs", "README")) else name
    result = cnndsl.check(text, file=file)
    network = json.loads(ir.to_json(result.network)) if result.network else None
    messages = sorted((d.code.id, d.message) for d in result.diagnostics)
    return _without_spans(network), messages


def test_there_is_much_to_format() -> None:
    assert len(EXAMPLES) >= 40


@pytest.mark.parametrize(("name", "text"), EXAMPLES, ids=IDS)
def test_format_is_idempotent_and_keeps_the_ir(name: str, text: str) -> None:
    formatted = format_source(text)
    assert format_source(formatted) == formatted
    assert _checked(formatted, name) == _checked(text, name)
    original = re.findall(r"#[^\n]*", re.sub(r'"[^"\n]*"', "", text))
    assert re.findall(r"#[^\n]*", re.sub(r'"[^"\n]*"', "", formatted)) == \
        [c.rstrip() for c in original]


def _canonical(name: str) -> str:
    return format_source(dict(EXAMPLES)[name])


_PIECES = re.compile(r'"[^"\n]*"|#[^\n]*| +|[^ "#]+')


@st.composite
def whitespace_variant(draw: st.DrawFn, text: str) -> str:
    """The same spec with its spaces, indentation, blank lines and line ends changed."""
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" ")
        indent = draw(st.sampled_from(["", " ", "\t", "      ", " \t "])) if body else ""
        pieces = []
        for piece in _PIECES.findall(body):
            if piece.startswith(" "):
                piece = draw(st.sampled_from([" ", "  ", "\t", " \t  "]))
            pieces.append(piece)
        trailing = draw(st.sampled_from(["", " ", "\t "]))
        lines.append(indent + "".join(pieces) + trailing)
        if not body and draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "   ", "\t"])))  # more blank lines
    variant = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    if draw(st.booleans()):  # arrows at the end of the line instead of the start of the next
        variant = re.sub(r"([^\s#][^\n#]*?)([ \t]*(?:#[^\n]*)?)(\r?\n)[ \t]*-> ",
                         lambda m: f"{m[1]} ->{m[2]}{m[3]}", variant)
    return variant


@pytest.mark.parametrize("name", [
    "specs/yolo_tiny.cnn", "specs/googlenet.cnn", "specs/xception.cnn",
    "specs/blocks/resnet.cnn", "docs/language.md#0", "docs/language.md#4",
])
@SETTINGS
@given(data=st.data())
def test_whitespace_variants_format_to_the_canonical_text(name: str, data: st.DataObject) -> None:
    canonical = _canonical(name)
    variant = data.draw(whitespace_variant(canonical))
    assert format_source(variant) == canonical


@pytest.mark.parametrize("name", ["specs/yolo_tiny.cnn", "docs/language.md#4"])
@SETTINGS
@given(data=st.data())
def test_inserted_comments_survive_in_order(name: str, data: st.DataObject) -> None:
    lines = _canonical(name).split("\n")
    count = data.draw(st.integers(1, 6))
    for number in range(count):
        index = data.draw(st.integers(0, len(lines) - 1))
        comment = f"# note {number} -> | {{"
        if data.draw(st.booleans()) and lines[index].strip() and "#" not in lines[index]:
            lines[index] += "   " + comment  # trailing
        else:
            lines.insert(index, "    " + comment)  # a line of its own
    text = "\n".join(lines)
    formatted = format_source(text)
    assert format_source(formatted) == formatted
    assert _checked(formatted, name) == _checked(text, name)
    notes = re.findall(r"# note \d+", formatted)
    assert sorted(notes) == sorted(re.findall(r"# note \d+", text))


def test_golden_file() -> None:
    formatted = format_source((ROOT / "specs" / "yolo_tiny.cnn").read_text(encoding="utf-8"))
    assert formatted == GOLDEN.read_text(encoding="utf-8")


MESSY = """\
# header comment


const  base=16 ;const other = base*2
block  conv_bn( filters,stride=1 ){conv filters 3x3 /stride pad 1->bn->relu}
network   demo(classes=10){
    input image :3x32x32   # the input
      stem: conv_bn( base ) ->   # why a stem
        relu
  residual {

     conv 32 3x3 pad 1 -> bn |  conv 32 3x3 pad 1



  }
  -> relu
  mixed: concat { conv 8 1x1 | maxpool 3x3 /1 pad 1 -> conv 8 1x1 }
  head : gap->flatten->linear   classes
  # expectations
  expect   params   <   1M
  expect inference memory( batch=8 ) < 1MiB
  expect head==N x 10
}
"""

MESSY_FORMATTED = """\
# header comment

const base = 16
const other = base * 2

block conv_bn(filters, stride = 1) { conv filters 3x3 /stride pad 1 -> bn -> relu }

network demo(classes = 10) {
  input image: 3 x 32 x 32  # the input
  stem: conv_bn(base)       # why a stem
    -> relu
  residual {
    conv 32 3x3 pad 1 -> bn
    | conv 32 3x3 pad 1
  }
  -> relu
  mixed: concat { conv 8 1x1 | maxpool 3x3 /1 pad 1 -> conv 8 1x1 }
  head: gap -> flatten -> linear classes
  # expectations
  expect params < 1M
  expect inference memory(batch = 8) < 1MiB
  expect head == N x 10
}
"""


def test_layout_rules() -> None:
    assert format_source(MESSY) == MESSY_FORMATTED


def test_empty_and_comment_only_bodies() -> None:
    text = "block a {\n}\nblock b {\n  # later\n}\nnetwork n { input x: 3 x 4 x 4 }\n"
    assert format_source(text) == (
        "block a {}\n\nblock b {\n  # later\n}\n\nnetwork n { input x: 3 x 4 x 4 }\n"
    )


def test_empty_text_and_comments_only() -> None:
    assert format_source("") == ""
    assert format_source("\n\n  \n") == ""
    assert format_source("  # just a note   \n\n\n# another\n") == "# just a note\n\n# another\n"


def test_a_syntax_error_is_a_positioned_diagnostic() -> None:
    with pytest.raises(CnnError) as error:
        format_source("network n {\n  conv 64 3x3 )\n}\n")
    assert error.value.diagnostics[0].span.line == 2
