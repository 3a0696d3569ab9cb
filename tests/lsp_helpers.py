"""Helpers for the language-server tests: documents by URI, positions by the text they point at."""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types

from cnndsl.lsp.workspace import Analysis, Workspace

ROOT = Path(__file__).resolve().parent.parent
RESNET50 = ROOT / "specs" / "resnet50.cnn"
BLOCKS = ROOT / "specs" / "blocks" / "resnet.cnn"


def position(text: str, needle: str, offset: int = 0, occurrence: int = 0) -> types.Position:
    """The LSP position of ``needle`` (its ``occurrence``-th match) plus ``offset`` characters."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(needle, start + 1)
    before = text[: start + offset]
    return types.Position(line=before.count("\n"), character=len(before.rsplit("\n", 1)[-1]))


def open_text(workspace: Workspace, path: Path, text: str | None = None) -> Analysis:
    """Open a document (its file's text unless given) and analyse it."""
    uri = path.resolve().as_uri()
    workspace.update(uri, path.read_text() if text is None else text)
    return workspace.analysis(uri)


def apply(text: str, edits: list[types.TextEdit]) -> str:
    """The text after the edits (LSP positions: lines split at \\n, \\r\\n or \\r)."""
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\n|\r", text)]

    def offset(position: types.Position) -> int:
        return starts[position.line] + position.character if position.line < len(starts) \
            else len(text)

    ordered = sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character))
    for edit in reversed(ordered):
        text = text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]
    return text
