"""The canonical layout of ``.cnn`` text: ``format_source(text) -> str``, comments kept.

The layout rules are listed in docs/language.md ("Formatting"). In short: two spaces per level,
one statement per line in a multi-line body, single spaces between a call's arguments, breaks in
a chain kept where the author put them but always before ``->``, trailing comments of a run of
lines aligned, at most one blank line, a blank line around each ``block`` and ``network``.

The formatter works on the concrete parse tree (every token kept, so literals, parentheses and
``|`` separators stay as written) and takes comments from the text itself: the grammar folds
them into separators. It re-parses its result and refuses to return text whose syntax tree
differs from the input's, so formatting can never change what a spec means.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import re
from dataclasses import dataclass, field
from typing import Any

from lark import Lark, Token, Tree

from cnndsl.diagnostics import Span
from cnndsl.syntax import ast
from cnndsl.syntax.parser import grammar_path, parse

INDENT = "  "

# Strings cannot hold a newline and '#' starts a comment anywhere outside a string.
_COMMENTS_AND_STRINGS = re.compile(r'"[^"\n]*"|#[^\n]*')
_LEAVES = {"integer", "real", "size", "scale", "string", "name", "splat"}
_BINARY = {"add", "sub", "mul", "div", "floordiv", "mod"}
# A node of the concrete tree: a lark Tree or Token, told apart at run time.
Node = Any


class FormatterBug(Exception):
    """The formatted text would parse differently from the input: a bug in cnndsl, not the spec."""


@functools.cache
def _concrete_parser() -> Lark:
    # The same grammar as the parser's, keeping every token: parentheses, separators, keywords.
    return Lark.open(
        str(grammar_path()), parser="lalr", propagate_positions=True, maybe_placeholders=True,
        keep_all_tokens=True, cache=True,
    )


@dataclass(frozen=True)
class _Comment:
    offset: int
    line: int
    text: str
    trailing: bool  # code precedes it on its line


@dataclass(frozen=True)
class _Mark:
    offset: int
    line: int  # source line where the token starts
    end_line: int
    out: int  # output line index
    separator: bool  # '->' or '|', which move to the start of the next line


@dataclass
class _Line:
    indent: int
    pieces: list[str] = field(default_factory=list)
    comment: str = ""
    src_first: int = 0
    src_last: int = 0
    blank_ok: bool = False  # a blank line of the source may be kept before it
    closes: bool = False  # starts with '}'
    own_comment: bool = False
    def_start: bool = False
    def_end: bool = False

    @property
    def code(self) -> str:
        return INDENT * self.indent + "".join(self.pieces)


def _comments(text: str) -> list[_Comment]:
    found = []
    for match in _COMMENTS_AND_STRINGS.finditer(text):
        if not match.group().startswith("#"):
            continue
        start = match.start()
        line_start = text.rfind("\n", 0, start) + 1
        trailing = bool(text[line_start:start].strip())
        line = text.count("\n", 0, start) + 1
        found.append(_Comment(start, line, match.group().rstrip(), trailing))
    return found


# Expressions ----------------------------------------------------------------------------------


def _expr(node: Any, tight: bool) -> str:
    """An expression; ``tight`` writes binary operators without spaces (one argument, one word)."""
    if isinstance(node, Token):
        return str(node)
    kind = node.data
    if kind in _LEAVES:
        return str(node.children[0])
    if kind in _BINARY:
        left, op, right = node.children
        space = "" if tight else " "
        return f"{_expr(left, tight)}{space}{op}{space}{_expr(right, tight)}"
    if kind == "neg":
        return "-" + _expr(node.children[1], tight)
    if kind == "atom":  # a parenthesised expression
        return "(" + _expr(node.children[1], False) + ")"
    if kind == "function":
        return f"{node.children[0]}{_call_args(node.children[1:])})"
    if kind == "items":
        return "(" + ", ".join(_expr(c, False) for c in _values(node.children)) + ")"
    raise FormatterBug(f"unexpected expression node {kind!r}")


def _values(children: list[Any]) -> list[Any]:
    # Drop punctuation tokens and empty placeholders, keep sub-trees and value tokens.
    return [c for c in children if isinstance(c, Tree)]


def _dims(node: Node) -> str:
    parts = []
    for child in _values(node.children):
        if child.data == "size":  # "3x224x224" written without spaces
            parts.extend(str(child.children[0]).split("x"))
        else:
            parts.append(_expr(child, True))
    return " x ".join(parts)


def _call_args(children: list[Any]) -> str:
    args = []
    for child in _values(children):
        if child.data == "named":
            name, _, value = child.children
            args.append(f"{name} = {_expr(value, False)}")
        else:
            args.append(_expr(child.children[0], False))
    return ", ".join(args)


def _spaced_item(node: Any) -> str:
    if isinstance(node, Tree) and node.data == "stride":
        return "/" + _expr(node.children[1], True)
    if isinstance(node, Tree) and node.data == "padding":
        return "pad " + _expr(node.children[1], True)
    if isinstance(node, Tree) and node.data == "keyword":
        name, _, value = node.children
        return f"{name}={_expr(value, True)}"
    return _expr(node, True)


def _call(node: Node) -> str:
    head = node.children[0]
    if node.data == "paren_call":
        return f"{head}{_call_args(node.children[1:])})"
    return " ".join([str(head), *(_spaced_item(c) for c in node.children[1:])])


def _subject(node: Node) -> str:
    words = []
    for index, child in enumerate(node.children):
        if isinstance(child, Token) and child.type == "CALLNAME":
            words.append(f"{child}{_call_args(node.children[index + 1:])})")
            break
        if isinstance(child, Token):
            words.append(str(child))
    return " ".join(words)


def _params(node: Node) -> str:
    if node is None:
        return ""
    params = []
    for param in _values(node.children):
        name, _, default = param.children
        params.append(str(name) if default is None else f"{name} = {_expr(default, False)}")
    return "(" + ", ".join(params) + ")"


# Layout ---------------------------------------------------------------------------------------


class _Writer:
    """Lays the concrete tree out as lines, recording where each source token went."""

    def __init__(self, text: str, comments: list[_Comment]):
        self.lines: list[_Line] = []
        self.marks: list[_Mark] = []
        self.comment_offsets = [c.offset for c in comments]

    @property
    def line(self) -> _Line:
        return self.lines[-1]

    def start(self, indent: int, blank_ok: bool = False, closes: bool = False,
              def_start: bool = False) -> None:
        """Begin a new output line."""
        self.lines.append(_Line(indent, blank_ok=blank_ok, closes=closes, def_start=def_start))

    def put(self, text: str, node: Any = None, separator: bool = False) -> None:
        """Append text to the current line; ``node``'s tokens are recorded as placed there."""
        self.line.pieces.append(text)
        tokens = [node] if isinstance(node, Token) else (
            list(node.scan_values(lambda v: isinstance(v, Token))) if node is not None else []
        )
        for token in tokens:
            if token.line is None:
                continue
            mark = _Mark(token.start_pos or 0, token.line, token.end_line or token.line,
                         len(self.lines) - 1, separator)
            self.marks.append(mark)
            if not self.line.src_first:
                self.line.src_first = token.line
            self.line.src_last = max(self.line.src_last, token.line)

    def has_comment(self, start: int, end: int) -> bool:
        index = bisect.bisect_left(self.comment_offsets, start)
        return index < len(self.comment_offsets) and self.comment_offsets[index] < end

    # top level
    def module(self, tree: Node) -> None:
        items = _values(tree.children)
        for item in items:
            is_def = item.data in ("block_def", "network_def")
            self.start(0, blank_ok=True, def_start=is_def)
            self.statement(item, 0)
            if is_def:
                self.line.def_end = True

    def statement(self, node: Node, indent: int) -> None:
        kind = node.data
        children = node.children
        if kind in ("block_def", "network_def"):
            keyword, name, params, body = children
            self.put(f"{keyword} {name}{_params(params)}", node=Tree("head", children[:3]))
            self.body(body, indent)
        elif kind == "import_stmt":
            self.put(f"import {children[1]}", node)
        elif kind == "const_stmt":
            self.put(f"const {children[1]} = {_expr(children[3], False)}", node)
        elif kind == "input_stmt":
            self.put(f"input {children[1]}: {_dims(children[3])}", node)
        elif kind == "output_stmt":
            names = [str(c) for c in children[1:]
                     if isinstance(c, Token) and c.type in ("NAME", "PATH")]
            self.put("output " + ", ".join(names), node)
        elif kind == "expect_stmt":
            _, subject, op, value = children
            shown = str(value) if isinstance(value, Token) else _dims(value)
            self.put(f"expect {_subject(subject)} {op} {shown}", node)
        elif kind == "chain_stmt":
            label, colon, chain = children
            if label is not None:
                name, numbered = label.children
                marker = "" if numbered is None else "[]"
                self.put(f"{name}{marker}: ", Tree("label", [label, colon]))
            self.chain(chain, indent)
        else:
            raise FormatterBug(f"unexpected statement {kind!r}")

    def chain(self, node: Node, indent: int) -> None:
        elements = [c for c in node.children if isinstance(c, Tree)]
        arrows = [c for c in node.children if isinstance(c, Token)]
        continuation = indent if _first_line_opens_body(elements) else indent + 1
        for index, element in enumerate(elements):
            if index:
                arrow = arrows[index - 1]
                if element.meta.line > elements[index - 1].meta.end_line:
                    self.start(continuation)
                    self.put("-> ", arrow, separator=True)
                else:
                    self.put(" -> ", arrow, separator=True)
            self.element(element)

    def element(self, node: Node) -> None:
        call, body, shortcut_word, shortcut, repeat_word, repeat = node.children
        self.put(_call(call), call)
        if body is not None:
            self.body(body, self.line.indent)
        if shortcut is not None:
            self.put(" shortcut", shortcut_word)
            self.body(shortcut, self.line.indent)
        if repeat is not None:
            self.put(f" x {_expr(repeat, True)}", Tree("repeat", [repeat_word, repeat]))

    def body(self, node: Node, indent: int) -> None:
        opening, closing = node.children[0], node.children[-1]
        statements: list[tuple[bool, Node]] = []  # (after a '|', statement)
        bar = False
        for child in node.children[1:-1]:
            if isinstance(child, Token):
                bar = bar or child.type == "BAR"
            elif isinstance(child, Tree):
                statements.append((bar, child))
                bar = False
        one_line = opening.line == closing.line
        if not statements and not self.has_comment(opening.start_pos or 0,
                                                   closing.start_pos or 0):
            self.put(" {}", Tree("empty", [opening, closing]))
            return
        self.put(" {", opening)
        if one_line:
            for index, (after_bar, statement) in enumerate(statements):
                self.put((" | " if after_bar else "; ") if index else " ")
                self.statement(statement, indent)
            self.put(" }", closing)
            return
        for after_bar, statement in statements:
            self.start(indent + 1, blank_ok=True)
            if after_bar:
                self.put("| ", _bar_before(node, statement), separator=True)
            self.statement(statement, indent + 1)
        self.start(indent, closes=True)
        self.put("}", closing)


def _bar_before(body: Node, statement: Node) -> Token | None:
    previous = None
    for child in body.children:
        if child is statement:
            return previous
        if isinstance(child, Token) and child.type == "BAR":
            previous = child
    return previous


def _multiline_body(element: Node) -> bool:
    for body in (element.children[1], element.children[3]):
        if body is not None and body.children[0].line != body.children[-1].line:
            return True
    return False


def _first_line_opens_body(elements: list[Node]) -> bool:
    # Continuation lines line up with the statement when its first line ends in '{' (a
    # residual body followed by "-> relu"), and sit one level deeper otherwise.
    for index, element in enumerate(elements):
        if index and element.meta.line > elements[index - 1].meta.end_line:
            return False
        if _multiline_body(element):
            return True
    return False


# Comments, blank lines, alignment -------------------------------------------------------------


def _place_comments(writer: _Writer, comments: list[_Comment]) -> list[_Line]:
    lines = writer.lines
    marks = sorted(writer.marks, key=lambda m: m.offset)
    offsets = [m.offset for m in marks]
    before: dict[int, list[_Comment]] = {}  # output line index -> own-line comments before it
    for comment in comments:
        index = bisect.bisect_left(offsets, comment.offset)
        previous = marks[index - 1] if index else None
        following = marks[index].out if index < len(marks) else len(lines)
        if comment.trailing and previous is not None:
            if not previous.separator:
                _attach(lines[previous.out], comment.text)
                continue
            earlier = marks[index - 2] if index >= 2 else None
            if earlier is not None and earlier.end_line == comment.line:
                _attach(lines[earlier.out], comment.text)  # "a -> # why": stays with a
                continue
        before.setdefault(following, []).append(comment)
    placed: list[_Line] = []
    for index in range(len(lines) + 1):
        target = lines[index] if index < len(lines) else None
        for comment in before.get(index, []):
            if target is None:
                indent, blank_ok = 0, True
            else:
                indent = target.indent + (1 if target.closes else 0)
                blank_ok = target.blank_ok or target.closes
            placed.append(_Line(indent, [comment.text], src_first=comment.line,
                                src_last=comment.line, blank_ok=blank_ok, own_comment=True))
        if target is not None:
            placed.append(target)
    _attach_leading_comments_to_definitions(placed)
    return placed


def _attach(line: _Line, comment: str) -> None:
    line.comment = f"{line.comment}  {comment}" if line.comment else comment


def _attach_leading_comments_to_definitions(lines: list[_Line]) -> None:
    # A comment right above a block or network (no blank line between) belongs to it: the
    # blank line that separates definitions goes above the comment.
    for index, line in enumerate(lines):
        if not line.def_start:
            continue
        first = index
        while (first > 0 and lines[first - 1].own_comment and lines[first - 1].indent == 0
               and lines[first - 1].src_last + 1 == lines[first].src_first):
            first -= 1
        if first != index:
            line.def_start = False
            lines[first].def_start = True


def _blank_lines(lines: list[_Line], text: str) -> list[bool]:
    """Whether a blank line goes before each output line."""
    blank = [not line.strip() for line in text.split("\n")]
    before = [0, 0]  # before[n]: blank source lines among lines 1 .. n-1
    for is_blank in blank:
        before.append(before[-1] + is_blank)
    result = [False] * len(lines)
    for index in range(1, len(lines)):
        line, previous = lines[index], lines[index - 1]
        if not line.blank_ok or (not previous.own_comment and previous.code.endswith("{")):
            continue  # never a blank line right after an opening brace
        kept = line.src_first > previous.src_last + 1 and \
            before[line.src_first] - before[previous.src_last + 1] > 0
        result[index] = kept or previous.def_end or line.def_start
    return result


def _render(lines: list[_Line], blank: list[bool]) -> str:
    out: list[str] = []
    columns = _comment_columns(lines, blank)
    for index, line in enumerate(lines):
        if blank[index]:
            out.append("")
        code = line.code
        if line.comment:
            code = code.ljust(columns[index] - 2) + "  " + line.comment
        out.append(code)
    return "\n".join(out) + "\n" if out else ""


def _comment_columns(lines: list[_Line], blank: list[bool]) -> list[int]:
    # Trailing comments of a run of lines (no blank line or comment line between, whatever
    # their indentation) start in one column, two spaces after the run's longest commented line.
    columns = [0] * len(lines)
    run: list[int] = []

    def close() -> None:
        commented = [i for i in run if lines[i].comment]
        column = max((len(lines[i].code) for i in commented), default=0) + 2
        for i in commented:
            columns[i] = column

    for index, line in enumerate(lines):
        previous = lines[index - 1] if index else None
        if previous is None or line.own_comment or previous.own_comment or blank[index]:
            close()
            run = []
        if not line.own_comment:
            run.append(index)
    close()
    return columns


# Entry point ----------------------------------------------------------------------------------


def _shape(value: Any) -> Any:
    """An AST value with every position dropped, for comparing two parses."""
    if isinstance(value, Span):
        return None
    if isinstance(value, ast.Module):
        return tuple(_shape(item) for item in value.items)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (_shape(getattr(value, f.name)) for f in dataclasses.fields(value))
        return (type(value).__name__, *fields)
    if isinstance(value, tuple | list):
        return tuple(_shape(v) for v in value)
    return value


def format_source(text: str) -> str:
    """The canonical layout of a spec; raises CnnError (positioned) when it does not parse."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    original = parse(text, "<format>")  # syntax errors surface here, as diagnostics
    comments = _comments(text)
    writer = _Writer(text, comments)
    writer.module(_concrete_parser().parse(text))
    lines = _place_comments(writer, comments)
    result = _render(lines, _blank_lines(lines, text))
    _verify(original, comments, result)
    return result


def _verify(original: ast.Module, comments: list[_Comment], result: str) -> None:
    try:
        formatted = parse(result, "<format>")
    except Exception as error:
        raise FormatterBug(f"the formatted text does not parse: {error}") from None
    if _shape(formatted) != _shape(original):
        raise FormatterBug("the formatted text parses to a different syntax tree")
    if [c.text for c in _comments(result)] != [c.text for c in comments]:
        raise FormatterBug("the formatted text lost or reordered a comment")
