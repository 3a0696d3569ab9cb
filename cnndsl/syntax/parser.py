"""Parse ``.cnn`` text into the surface AST with the Lark grammar in ``grammars/cnn.lark``."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from cnndsl.diagnostics import CnnError, Code, Diagnostic, Span
from cnndsl.syntax import ast

MAX_SOURCE_BYTES = 8 * 1024 * 1024
MAX_SYNTAX_ERRORS = 20  # a file with more is likely not a spec at all
MAX_TOKENS = 100_000  # 10,000 layers written a line each; the bundled specs have under 400
MAX_NESTING = 100  # braces and parentheses; far beyond real specs, well within Python's stack

_BRACKETS = re.compile(r'#[^\n]*|"[^"\n]*"|[(){}]')
# An upper bound on the lexer's tokens: a word or number, a string, a run of line ends and
# comments (one separator token), or any other character.
_TOKENS = re.compile(r'[\w.]+|"[^"\n]*"|(?:[;\n]|#[^\n]*)(?:[;\s]|#[^\n]*)*|[^\s\w]')

# The grammar ships inside the wheel; in a source checkout it sits at the repository root.
_GRAMMAR_PLACES = (
    Path(__file__).resolve().parent.parent / "grammars" / "cnn.lark",
    Path(__file__).resolve().parent.parent.parent / "grammars" / "cnn.lark",
)

# How each terminal reads in an error message.
_TOKEN_WORDS = {
    "NAME": "a name",
    "PATH": "a path like features.0",
    "SPLAT": "every instance, like m.*",
    "NUMBERED": "'[]'",
    "CALLNAME": "a call like 'name('",
    "INT": "an integer",
    "FLOAT": "a number",
    "SIZE": "a size like 3x3",
    "SCALE": "a factor like 2x",
    "QUANTITY": "a quantity like 16GiB",
    "STRING": "a string",
    "ARROW": "'->'",
    "BAR": "'|'",
    "_SEP": "a line break",
    "_LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "COLON": "':'",
    "EQUAL": "'='",
    "SLASH": "'/'",
    "COMPARE": "a comparison like '=='",
    "REPEAT": "'x'",
    "SHORTCUT": "'shortcut'",
    "$END": "the end of the file",
}


def grammar_path() -> Path:
    """Where the grammar file is found, installed or in a checkout."""
    for place in _GRAMMAR_PLACES:
        if place.is_file():
            return place
    raise FileNotFoundError("grammars/cnn.lark is missing from the installation")


@functools.cache
def _parser() -> Lark:
    # cache=True keeps the LALR tables on disk between processes: a cold check stays fast.
    return Lark.open(
        str(grammar_path()), parser="lalr", propagate_positions=True, maybe_placeholders=True,
        cache=True,
    )


def _span(file: str, meta: Any) -> Span:
    if getattr(meta, "empty", False):
        return Span(file=file)
    return Span(
        file=file, line=meta.line, col=meta.column, end_line=meta.end_line, end_col=meta.end_column
    )


def _token_span(file: str, token: Token) -> Span:
    return Span(
        file=file,
        line=token.line or 1,
        col=token.column or 1,
        end_line=token.end_line or token.line or 1,
        end_col=token.end_column or (token.column or 1) + len(token),
    )


def _int(text: str) -> int:
    return int(text.replace("_", ""))


@v_args(meta=True)
class _ToAst(Transformer[Token, Any]):
    """Turns the parse tree into AST nodes, one method per grammar rule."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _s(self, meta: Any) -> Span:
        return _span(self.file, meta)

    def _t(self, token: Token) -> Span:
        return _token_span(self.file, token)

    # expressions
    def integer(self, meta: Any, children: list[Token]) -> ast.Number:
        return ast.Number(_int(children[0]), self._s(meta))

    def real(self, meta: Any, children: list[Token]) -> ast.Number:
        return ast.Number(float(children[0]), self._s(meta))

    def size(self, meta: Any, children: list[Token]) -> ast.Size:
        return ast.Size(tuple(int(p) for p in children[0].split("x")), self._s(meta))

    def scale(self, meta: Any, children: list[Token]) -> ast.Scale:
        return ast.Scale(float(children[0][:-1]), self._s(meta))

    def string(self, meta: Any, children: list[Token]) -> ast.Str:
        return ast.Str(children[0][1:-1], self._s(meta))

    def name(self, meta: Any, children: list[Token]) -> ast.Name:
        return ast.Name(str(children[0]), self._s(meta))

    def splat(self, meta: Any, children: list[Token]) -> ast.Splat:
        return ast.Splat(str(children[0])[:-2], self._s(meta))

    def function(self, meta: Any, children: list[Any]) -> ast.Function:
        head, *rest = children
        args = tuple(self._as_arg(c) for c in rest if c is not None)
        head_span = self._t(head)
        head_span = dataclasses.replace(head_span, end_col=head_span.end_col - 1)
        return ast.Function(str(head)[:-1], args, self._s(meta), head_span)

    def items(self, meta: Any, children: list[ast.Expr]) -> ast.Tuple:
        return ast.Tuple(tuple(children), self._s(meta))

    def neg(self, meta: Any, children: list[ast.Expr]) -> ast.Neg:
        return ast.Neg(children[0], self._s(meta))

    def _binary(op: str) -> Any:  # type: ignore[misc]
        def method(self: _ToAst, meta: Any, children: list[ast.Expr]) -> ast.BinOp:
            return ast.BinOp(op, children[0], children[1], self._s(meta))

        return method

    add = _binary("+")
    sub = _binary("-")
    mul = _binary("*")
    div = _binary("/")
    floordiv = _binary("//")
    mod = _binary("%")

    # arguments and calls
    def stride(self, meta: Any, children: list[ast.Expr]) -> ast.Arg:
        return ast.Arg("stride", children[0], self._s(meta), self._s(meta))

    def padding(self, meta: Any, children: list[ast.Expr]) -> ast.Arg:
        return ast.Arg("padding", children[0], self._s(meta), self._s(meta))

    def keyword(self, meta: Any, children: list[Any]) -> ast.Arg:
        return ast.Arg(str(children[0]), children[1], self._s(meta), self._t(children[0]))

    def named(self, meta: Any, children: list[Any]) -> ast.Arg:
        return self.keyword(meta, children)

    def positional(self, meta: Any, children: list[ast.Expr]) -> ast.Arg:
        return ast.Arg(None, children[0], self._s(meta))

    def _as_arg(self, item: Any) -> ast.Arg:
        return item if isinstance(item, ast.Arg) else ast.Arg(None, item, item.span)

    def spaced_call(self, meta: Any, children: list[Any]) -> ast.Call:
        head, *rest = children
        args = tuple(self._as_arg(c) for c in rest)
        return ast.Call(str(head), args, self._s(meta), self._t(head))

    def paren_call(self, meta: Any, children: list[Any]) -> ast.Call:
        head, *rest = children
        args = tuple(self._as_arg(c) for c in rest if c is not None)
        head_span = self._t(head)
        head_span = dataclasses.replace(head_span, end_col=head_span.end_col - 1)
        return ast.Call(str(head)[:-1], args, self._s(meta), head_span)

    def element(self, meta: Any, children: list[Any]) -> ast.Call:
        call, body, _shortcut_kw, shortcut, _repeat_kw, repeat = children
        return ast.Call(
            call.name, call.args, self._s(meta), call.name_span, body, shortcut, repeat
        )

    def chain(self, meta: Any, children: list[Any]) -> ast.Chain:
        calls = tuple(c for c in children if isinstance(c, ast.Call))
        return ast.Chain(calls, self._s(meta))

    # statements
    def label(self, meta: Any, children: list[Any]) -> tuple[Token, bool]:
        name, numbered = children
        return name, numbered is not None

    def chain_stmt(self, meta: Any, children: list[Any]) -> ast.ChainStatement:
        label, chain = children
        if label is None:
            return ast.ChainStatement(None, chain, self._s(meta))
        name, numbered = label
        return ast.ChainStatement(str(name), chain, self._s(meta), self._t(name), numbered)

    def dims(self, meta: Any, children: list[Any]) -> tuple[ast.Expr, ...]:
        dims: list[ast.Expr] = []
        for child in children:
            if isinstance(child, Token):
                continue
            if isinstance(child, ast.Size):  # "3x224x224" written without spaces
                dims.extend(ast.Number(d, child.span) for d in child.dims)
            else:
                dims.append(child)
        return tuple(dims)

    def input_stmt(self, meta: Any, children: list[Any]) -> ast.Input:
        name, dims = children
        return ast.Input(str(name), dims, self._s(meta), self._t(name))

    def output_stmt(self, meta: Any, children: list[Token]) -> ast.Output:
        return ast.Output(tuple(ast.Name(str(t), self._t(t)) for t in children), self._s(meta))

    def const_stmt(self, meta: Any, children: list[Any]) -> ast.Const:
        name, value = children
        return ast.Const(str(name), value, self._s(meta), self._t(name))

    def subject(self, meta: Any, children: list[Any]) -> tuple[tuple[str, ...], Any, Span]:
        words = [str(c) for c in children
                 if isinstance(c, Token) and c.type in ("NAME", "PATH")]
        calls = [c for c in children if isinstance(c, Token) and c.type == "CALLNAME"]
        if calls:
            words.append(str(calls[0])[:-1])
            args = tuple(self._as_arg(c) for c in children if not isinstance(c, Token | None))
            return tuple(words), args, self._s(meta)
        return tuple(words), None, self._s(meta)

    def expect_stmt(self, meta: Any, children: list[Any]) -> ast.Expect:
        (words, args, subject_span), op, value = children
        values = value if isinstance(value, tuple) else (self._quantity(value),)
        return ast.Expect(words, args, str(op), values, self._s(meta), subject_span)

    def _quantity(self, token: Token) -> ast.Quantity:
        text = str(token)
        digits = len(text.rstrip("KMGTiB"))
        return ast.Quantity(float(text[:digits]), text[digits:], self._t(token))

    def body(self, meta: Any, children: list[Any]) -> ast.Body:
        bars = any(isinstance(c, Token) and c.type == "BAR" for c in children)
        statements = tuple(c for c in children if c is not None and not isinstance(c, Token))
        return ast.Body(statements, self._s(meta), bars)

    def param(self, meta: Any, children: list[Any]) -> ast.Param:
        name, default = children
        return ast.Param(str(name), default, self._s(meta))

    def params(self, meta: Any, children: list[Any]) -> tuple[ast.Param, ...]:
        return tuple(c for c in children if c is not None)

    def block_def(self, meta: Any, children: list[Any]) -> ast.BlockDef:
        name, params, body = children
        return ast.BlockDef(str(name), params or (), body, self._s(meta), self._t(name))

    def network_def(self, meta: Any, children: list[Any]) -> ast.NetworkDef:
        name, params, body = children
        return ast.NetworkDef(str(name), params or (), body, self._s(meta), self._t(name))

    def import_stmt(self, meta: Any, children: list[Token]) -> ast.Import:
        return ast.Import(str(children[0])[1:-1], self._s(meta))

    def start(self, meta: Any, children: list[Any]) -> list[Any]:
        return [c for c in children if c is not None]


def _describe(token: Token | None) -> str:
    if token is None or token.type == "$END":
        return "end of file"
    if token.type == "_SEP":
        return "line break" if "\n" in token or "#" in token else "';'"
    return repr(str(token))


def _expected_words(expected: Any) -> str:
    words = sorted({_TOKEN_WORDS.get(str(n), _keyword_word(str(n))) for n in expected})
    if len(words) > 6:
        words = [*words[:6], "..."]
    return ", ".join(words)


def _keyword_word(terminal: str) -> str:
    # Anonymous keyword terminals are named after their text ("INPUT" for "input").
    symbols = {"PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "PERCENT": "'%'", "SLASH": "'/'"}
    if terminal in symbols:
        return symbols[terminal]
    return f"'{terminal.lower()}'" if terminal.isalpha() else terminal


def _end_span(file: str, text: str) -> Span:
    lines = text.removesuffix("\n").split("\n")  # the lexer counts only "\n" as a line end
    last = lines[-1].removesuffix("\r")
    return Span(file=file, line=len(lines), col=len(last) + 1, end_line=len(lines),
                end_col=len(last) + 2)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - text.rfind("\n", 0, offset)


def _indent(text: str, offset: int) -> int:
    start = text.rfind("\n", 0, offset) + 1
    line = text[start:offset]
    return len(line) - len(line.lstrip(" \t"))


def _unclosed(file: str, text: str) -> Diagnostic | None:
    # At the end of the file, name the bracket that was never closed rather than the end itself.
    # Brackets match innermost first, so a '{' left open inside a body makes the body's own
    # '}' close it; the indentation tells: a '}' indented less than its '{' line closes an
    # outer body, and that '{' is the one the user forgot.
    opened: list[int] = []
    forgotten: int | None = None
    for match in _BRACKETS.finditer(text):
        char = match.group()
        if char in "({":
            opened.append(match.start())
        elif char in ")}" and opened:
            start = opened.pop()
            if forgotten is None and _indent(text, match.start()) < _indent(text, start):
                forgotten = start
    if not opened:
        return None
    offset = opened[-1] if forgotten is None else forgotten
    line, col = _position(text, offset)
    span = Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)
    closer = "}" if text[offset] == "{" else ")"
    end = _end_span(file, text)
    return Diagnostic(Code.UNEXPECTED_END, span, f"'{text[offset]}' is never closed",
                      notes=(f"the file ends at line {end.line} before its '{closer}'",))


def _syntax_error(file: str, error: UnexpectedInput, text: str) -> Diagnostic:
    line, col = max(error.line, 1), max(error.column, 1)
    if isinstance(error, UnexpectedCharacters):
        position = error.pos_in_stream or 0
        char = text[position] if position < len(text) else "?"
        message = f"unexpected character {char!r}"
        span = Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)
        return Diagnostic(Code.SYNTAX, span, message)
    if isinstance(error, UnexpectedEOF) or (
        isinstance(error, UnexpectedToken) and error.token.type == "$END"
    ):
        unclosed = _unclosed(file, text)
        if unclosed is not None:
            return unclosed
        message = f"unexpected end of file; expected {_expected_words(error.expected)}"
        return Diagnostic(Code.UNEXPECTED_END, _end_span(file, text), message)
    assert isinstance(error, UnexpectedToken)
    token = error.token
    span = _token_span(file, token)
    if token.type == "_SEP":  # point at the line end, not the whole run of blank lines
        span = Span(file=file, line=span.line, col=span.col, end_line=span.line,
                    end_col=span.col + 1)
    message = f"unexpected {_describe(token)}; expected {_expected_words(error.expected)}"
    return Diagnostic(Code.SYNTAX, span, message)


# Tokens a statement ends at: after an error the parser skips to one of them and goes on.
_SYNC = frozenset({"_SEP", "BAR", "RBRACE"})


class _Recovery:
    """Reparses a text that has a syntax error, collecting every error instead of the first.

    Panic mode at statement level: after an error, tokens are skipped up to the end of the
    statement (a line break, ``;``, ``|`` or the ``}`` closing the body, skipping whole bodies
    opened on the way), the parser's stack is cut back to a state that accepts that token, and
    parsing goes on. Any prefix of an LR stack is a valid stack, so the cut is sound; the tree
    built meanwhile is discarded, since the file has errors anyway.
    """

    def __init__(self, file: str, text: str):
        self.file = file
        self.text = text
        self.diagnostics: list[Diagnostic] = []
        self.skipping = False
        self.depth = 0  # braces opened while skipping
        self.last_char_error = -2  # offset of the last unexpected character

    def run(self) -> list[Diagnostic]:
        """Every syntax error of the text, in order, at most MAX_SYNTAX_ERRORS."""
        interactive = _parser().parse_interactive(self.text)
        lexer, state = interactive.lexer_thread, interactive.parser_state
        while len(self.diagnostics) < MAX_SYNTAX_ERRORS:
            try:
                for token in lexer.lex(state):
                    self._feed(state, token)
                break
            except UnexpectedToken as error:  # from the parser, or from the contextual lexer
                self._error(state, error)
            except UnexpectedCharacters as error:
                self._bad_character(error, lexer)
        else:
            return self.diagnostics
        try:
            state.feed_token(Token("$END", "", len(self.text), 1, 1), True)
        except UnexpectedToken as error:
            if not self.diagnostics or _unclosed(self.file, self.text) is not None:
                self.diagnostics.append(_syntax_error(self.file, error, self.text))
        return self.diagnostics

    def _feed(self, state: Any, token: Token) -> None:
        if not self.skipping:
            state.feed_token(token)
            return
        if token.type == "_LBRACE":
            self.depth += 1
        elif token.type == "RBRACE" and self.depth:
            self.depth -= 1
        elif token.type in _SYNC and not self.depth:
            self.skipping = False
            self._resume(state, token)

    def _error(self, state: Any, error: UnexpectedToken) -> None:
        token = error.token
        if self.skipping:  # the contextual lexer refused a token being skipped
            self._feed(state, token)
            return
        self.diagnostics.append(_syntax_error(self.file, error, self.text))
        if token.type in _SYNC:
            self.skipping = False
            self._resume(state, token)
        else:
            self.skipping, self.depth = True, int(token.type == "_LBRACE")

    def _resume(self, state: Any, token: Token) -> None:
        # Cut the stack back to the deepest state that takes the token. A token no state takes
        # (a stray '}' at the top level) is dropped with the rest of its statement.
        states = state.parse_conf.states
        for depth in range(len(state.state_stack) - 1, -1, -1):
            if token.type not in states[state.state_stack[depth]]:
                continue
            trial = type(state)(state.parse_conf, state.lexer, state.state_stack[:depth + 1],
                                state.value_stack[:depth])
            try:
                trial.feed_token(token)
            except UnexpectedToken:
                continue
            state.state_stack[:] = trial.state_stack
            state.value_stack[:] = trial.value_stack
            return
        self.skipping = token.type != "_SEP"

    def _bad_character(self, error: UnexpectedCharacters, lexer: Any) -> None:
        position = error.pos_in_stream or 0
        if not self.skipping and position != self.last_char_error + 1:
            self.diagnostics.append(_syntax_error(self.file, error, self.text))
        self.last_char_error = position
        counter = lexer.state.line_ctr
        if counter.char_pos == position:  # step over the character, as lark's on_error does
            counter.feed(self.text[position:position + 1])


def _check_nesting(text: str, file: str) -> None:
    # Parse trees are transformed recursively: refuse absurd nesting up front, where it starts.
    depth = 0
    for match in _BRACKETS.finditer(text):
        char = match.group()
        if char in "({":
            depth += 1
            if depth > MAX_NESTING:
                position = match.start()
                line = text.count("\n", 0, position) + 1
                col = position - text.rfind("\n", 0, position)
                span = Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)
                message = f"brackets nest deeper than {MAX_NESTING} levels"
                raise CnnError([Diagnostic(Code.LIMIT, span, message)])
        elif char in ")}":
            depth = max(depth - 1, 0)


def _check_tokens(text: str, file: str) -> None:
    # The parser's time and memory grow with the tokens (about 20 us and 5 KB each): count them
    # first, stopping at the limit, so that a huge spec is refused in milliseconds.
    for count, match in enumerate(_TOKENS.finditer(text), start=1):
        if count > MAX_TOKENS:
            line, col = _position(text, match.start())
            span = Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)
            message = f"the spec has more than {MAX_TOKENS:,} tokens (words, numbers, symbols)"
            raise CnnError([Diagnostic(Code.LIMIT, span, message)])


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    # A parse allocates many objects and frees none of them (a parse tree holds no cycles),
    # so the cycle collector's full passes only cost time, more the larger the spec.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class SourceError(Exception):
    """Why a spec file cannot be read: an IO or LIMIT code and the reason, for a message."""

    def __init__(self, code: Code, reason: str, line: int = 1, col: int = 1):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.line, self.col = line, col  # where in the file, when the reason is in its text


def _too_large() -> str:
    return f"file is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB"


def _open_regular(path: Path) -> int:
    # A FIFO would block open() until a writer comes, a device never ends: look before opening,
    # open without blocking, and look again at what was opened (the name may have changed).
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise SourceError(Code.IO, "not a regular file")
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(handle).st_mode):
        os.close(handle)
        raise SourceError(Code.IO, "not a regular file")
    return handle


def read_source(path: Path) -> str:
    """A spec file's text, read no further than the size limit; only regular files are read."""
    try:
        with os.fdopen(_open_regular(path), "rb") as stream:
            data = stream.read(MAX_SOURCE_BYTES + 1)
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        reason = getattr(error, "strerror", None) or str(error)
        raise SourceError(Code.IO, reason) from None
    if len(data) > MAX_SOURCE_BYTES:
        raise SourceError(Code.LIMIT, _too_large())
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise _not_utf8(data, error) from None


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> SourceError:
    # Positioned at the first bad byte, in characters as an editor counts them. The byte's
    # value is shown, never the text around it (the file may not be a spec at all).
    offset = error.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
    start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    col = len(data[start:offset].decode("utf-8", "replace")) + 1
    if line == 1 and data.startswith(b"\xef\xbb\xbf"):
        col -= 1  # the byte-order mark is no character of the text
    reason = f"not UTF-8 text: byte 0x{data[offset]:02x} at line {line}, column {col}"
    return SourceError(Code.IO, reason, line, col)


def read_stream(stream: BinaryIO) -> str:
    """A spec read from a byte stream (standard input), no further than one byte past the size
    limit: parse() then reports a longer text; bytes that are not UTF-8 stay as escapes for it."""
    return stream.read(MAX_SOURCE_BYTES + 1).decode("utf-8", "surrogateescape")


def parse(text: str, file: str = "<string>") -> ast.Module:
    """Parse one file's text; a syntax error raises CnnError with a positioned diagnostic."""
    if len(text.encode("utf-8", "replace")) > MAX_SOURCE_BYTES:
        raise CnnError([Diagnostic(Code.LIMIT, Span(file=file), _too_large())])
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
    _check_nesting(text, file)
    _check_tokens(text, file)
    try:
        with _collector_paused():
            tree: Tree[Token] = _parser().parse(text)
            items = _ToAst(file).transform(tree)
    except UnexpectedInput as error:
        diagnostics = _Recovery(file, text).run() or [_syntax_error(file, error, text)]
        raise CnnError(diagnostics) from None
    except (RecursionError, VisitError) as error:
        # The transformer wraps errors of its callbacks: running out of stack, or int() refusing
        # a literal of thousands of digits (Python's limit on string-to-int conversion).
        cause = error.orig_exc if isinstance(error, VisitError) else error
        if isinstance(cause, RecursionError):
            message = "the spec is nested too deeply"
            raise CnnError([Diagnostic(Code.LIMIT, Span(file=file), message)]) from None
        if isinstance(cause, ValueError) and isinstance(error, VisitError):
            meta = getattr(error.obj, "meta", None)
            span = _span(file, meta) if meta is not None else Span(file=file)
            message = "integer overflow: the value is too large"
            raise CnnError([Diagnostic(Code.LIMIT, span, message)]) from None
        raise
    return ast.Module(file, items)
