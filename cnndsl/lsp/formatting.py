"""Formatting a document (or a range of it) in the layout of ``cnndsl fmt``, as text edits.

``format_source`` lays out the whole text and refuses any result whose syntax tree or comments
differ from the input's, so no edit here can change what a spec means. The edits are the lines
that changed (a diff), not one replacement of the document, so the editor keeps the cursor,
folds and marks of the lines the layout leaves alone. A range takes the changed runs of lines
that touch it; the text with only those applied must lay out to the same text as the whole
document (then it has the input's syntax tree and comments), else every run is taken.
"""

from __future__ import annotations

import difflib
import re

from lsprotocol import types

from cnndsl.diagnostics import CnnError
from cnndsl.syntax.format import FormatterBug, format_source

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+$")
_Run = tuple[int, int, int, int]  # old lines [i1, i2) become new lines [j1, j2)


class FormatError(Exception):
    """The formatter failed on a text that parses: a bug in cnndsl, reported to the user."""


def formatting(text: str, wanted: types.Range | None = None) -> list[types.TextEdit]:
    """The edits that lay ``text`` out canonically (only around ``wanted`` if given); none when
    the text does not parse (its diagnostics say why)."""
    canonical = _format(text)
    if canonical is None:
        return []
    eol = "\r\n" if "\r\n" in text else "\n"
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    old = _lines(text)
    new = _lines(bom + canonical.replace("\n", eol))
    runs = _runs(old, new)
    if wanted is not None:
        chosen = [run for run in runs if _touches(run, wanted)]
        if chosen != runs and _format(_applied(old, new, chosen)) != canonical:
            chosen = runs  # the runs depend on each other: only the whole layout is safe
        runs = chosen
    return [_edit(old, new, run) for run in runs]


def _format(text: str) -> str | None:
    try:
        return format_source(text)
    except CnnError:
        return None
    except FormatterBug as error:
        raise FormatError(str(error)) from None


def _lines(text: str) -> list[str]:
    """The lines of a text with their ends, split where LSP splits them (not at U+2028...)."""
    return _LINE.findall(text)


def _runs(old: list[str], new: list[str]) -> list[_Run]:
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def _touches(run: _Run, wanted: types.Range) -> bool:
    first, last = run[0], max(run[0], run[1] - 1)  # an insertion touches the line it precedes
    end = wanted.end.line
    if wanted.end.character == 0 and end > wanted.start.line:
        end -= 1  # a selection of whole lines ends at the start of the next one
    return first <= end and wanted.start.line <= last


def _applied(old: list[str], new: list[str], runs: list[_Run]) -> str:
    pieces: list[str] = []
    at = 0
    for i1, i2, j1, j2 in runs:
        pieces += old[at:i1] + new[j1:j2]
        at = i2
    return "".join(pieces + old[at:])


def _edit(old: list[str], new: list[str], run: _Run) -> types.TextEdit:
    i1, i2, j1, j2 = run
    start = _start_of(old, i1)
    end = _start_of(old, i2)
    return types.TextEdit(range=types.Range(start=start, end=end), new_text="".join(new[j1:j2]))


def _start_of(lines: list[str], index: int) -> types.Position:
    """The position where line ``index`` starts; past the last line, the end of the text."""
    if index < len(lines):
        return types.Position(line=index, character=0)
    if not lines:
        return types.Position(line=0, character=0)
    last = lines[-1]
    if last.endswith(("\n", "\r")):
        return types.Position(line=len(lines), character=0)
    return types.Position(line=len(lines) - 1, character=len(last.encode("utf-16-le")) // 2)
