"""Reparse only the statements an edit touched, reusing the rest of the previous AST.

A keystroke in a 10,000-layer spec changes one statement; parsing the whole file again costs
half a second, parsing the statement a millisecond. The edited lines are widened to whole
statements of one network or block body, parsed alone at their own line numbers (inside a
throw-away ``network _ {`` header on the line above), and spliced into the previous module; the
spans after the edit move by the change in line count. Whenever the splice could differ from a
full parse (the edit touches a header, a line shared with another statement, or the fragment
does not parse on its own), the caller parses the whole file instead, so syntax errors are
always the full parser's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cnndsl.diagnostics import CnnError, Span
from cnndsl.syntax import ast
from cnndsl.syntax.parser import parse

_Definition = ast.NetworkDef | ast.BlockDef


def reparse(old_text: str, old: ast.Module, new_text: str) -> ast.Module | None:
    """The module of ``new_text`` built from ``old`` (parsed from ``old_text``), or None."""
    old_lines = old_text.split("\n")
    new_lines = new_text.split("\n")
    first, old_last, _new_last = _changed_lines(old_lines, new_lines)
    if first is None:
        return old
    found = _enclosing(old, first, old_last)
    if found is None:
        return None
    index, definition = found
    statements = definition.body.statements
    if definition.body.bars:
        return None
    touched = [i for i, s in enumerate(statements)
               if s.span.end_line >= first - 1 and s.span.line <= old_last + 1]
    start_line = min([first, *(statements[i].span.line for i in touched)])
    end_line = max([old_last, *(statements[i].span.end_line for i in touched)])
    before = [s for i, s in enumerate(statements) if i not in touched and s.span.line < start_line]
    after = [s for i, s in enumerate(statements) if i not in touched and s.span.line > end_line]
    if len(before) + len(after) + len(touched) != len(statements):
        return None  # a statement shares a line with the region
    if start_line <= definition.body.span.line or end_line >= definition.body.span.end_line:
        return None
    delta = len(new_lines) - len(old_lines)
    fragment = _parse_fragment(new_lines, start_line, end_line + delta, old.file)
    if fragment is None:
        return None
    if not delta and fragment == tuple(statements[i] for i in touched):
        return old  # a comment or blank line changed: the same module, so the same analysis
    moved = [shift(s, delta) for s in after] if delta else after
    body = dataclasses.replace(definition.body,
                               statements=(*before, *fragment, *moved),
                               span=_moved_end(definition.body.span, delta))
    item = dataclasses.replace(definition, body=body, span=_moved_end(definition.span, delta))
    later = old.items[index + 1:]
    items = [*old.items[:index], item, *([shift(i, delta) for i in later] if delta else later)]
    return ast.Module(old.file, items)


def _changed_lines(old: list[str], new: list[str]) -> tuple[int | None, int, int]:
    """The first changed line and the last changed line of each text (1-based; last may be
    first - 1 for a pure insertion or deletion)."""
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    if prefix == len(old) == len(new):
        return None, 0, 0
    suffix = 0
    while (suffix < limit - prefix and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]):
        suffix += 1
    return prefix + 1, len(old) - suffix, len(new) - suffix


def _enclosing(module: ast.Module, first: int, last: int) -> tuple[int, _Definition] | None:
    """The network or block whose body lines (between its braces) hold lines first..last."""
    low, high = first - 1, max(first, last) + 1  # neighbours must stay outside the header too
    for index, item in enumerate(module.items):
        if isinstance(item, _Definition):
            body = item.body.span
            if body.line < low and high < body.end_line:
                return index, item
    return None


def _parse_fragment(lines: list[str], start: int, end: int,
                    file: str) -> tuple[ast.Statement, ...] | None:
    """The statements on lines start..end, parsed where they stand; None if they do not parse."""
    # Blank lines move the header to the line above the fragment, so every span is where the
    # full parse would put it; columns are untouched.
    text = "\n" * (start - 2) + "network _ {\n" + "\n".join(lines[start - 1:end]) + "\n}\n"
    try:
        module = parse(text, file)
    except CnnError:
        return None
    if len(module.items) != 1 or not isinstance(module.items[0], ast.NetworkDef):
        return None
    body = module.items[0].body
    return None if body.bars else body.statements


def _moved_end(span: Span, delta: int) -> Span:
    return Span(file=span.file, line=span.line, col=span.col,
                                end_line=span.end_line + delta, end_col=span.end_col)


def shift(node: Any, delta: int) -> Any:
    """A copy of an AST node (or tuple of them) with every span moved down ``delta`` lines."""
    if isinstance(node, Span):
        return Span(file=node.file, line=node.line + delta, col=node.col,
                                    end_line=node.end_line + delta, end_col=node.end_col)
    if isinstance(node, tuple):
        return tuple(shift(item, delta) for item in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {f.name: shift(getattr(node, f.name), delta)
                   for f in dataclasses.fields(node)}
        return dataclasses.replace(node, **changes)
    return node
