"""Where each name of a file occurs: block calls, layer words, tensor labels, constants, imports.

One walk over a module's AST, kept per analysis, serves hover, go to definition, references
and the outline. Tensors and parameters are scoped to their network or block (nested bodies
share it, as in the elaborator); blocks and constants are global to the files loaded together.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cnndsl.diagnostics import Span
from cnndsl.syntax import ast

BLOCK, LAYER, TENSOR, VALUE, IMPORT, NETWORK = (
    "block", "layer", "tensor", "value", "import", "network",
)


@dataclass(frozen=True)
class Occurrence:
    """One name in the source: what it names, whether it defines it, and where it is scoped."""

    span: Span
    kind: str  # BLOCK, LAYER (a built-in word), TENSOR, VALUE (constant, parameter), IMPORT...
    name: str
    defines: bool = False
    scope: str = ""  # the network or block it belongs to; "" for file-level names
    call: ast.Call | None = None  # for BLOCK and LAYER occurrences


def occurrences(module: ast.Module) -> list[Occurrence]:
    """Every occurrence of a name in a module, in source order per item."""
    found: list[Occurrence] = []
    for item in module.items:
        if isinstance(item, ast.Import):
            found.append(Occurrence(item.span, IMPORT, item.path))
        elif isinstance(item, ast.Const):
            found.append(Occurrence(item.name_span, VALUE, item.name, True))
            found.extend(_expression(item.value, ""))
        else:
            kind = NETWORK if isinstance(item, ast.NetworkDef) else BLOCK
            found.append(Occurrence(item.name_span, kind, item.name, True))
            for param in item.params:
                found.append(Occurrence(_param_name_span(param), VALUE, param.name, True,
                                        item.name))
                if param.default is not None:
                    found.extend(_expression(param.default, item.name))
            found.extend(_body(item.body, item.name, set()))
    return found


def _param_name_span(param: ast.Param) -> Span:
    # A parameter's span covers its default too; its name starts the span.
    span = param.span
    return Span(file=span.file, line=span.line, col=span.col,
                                end_line=span.line, end_col=span.col + len(param.name))


def _body(body: ast.Body, scope: str, tensors: set[str]) -> Iterator[Occurrence]:
    for statement in body.statements:
        if isinstance(statement, ast.Input):
            tensors.add(statement.name)
            yield Occurrence(statement.name_span, TENSOR, statement.name, True, scope)
            for dim in statement.dims:
                yield from _expression(dim, scope)
        elif isinstance(statement, ast.Output):
            for ref in statement.names:
                yield Occurrence(ref.span, TENSOR, ref.name, False, scope)
        elif isinstance(statement, ast.Const):
            yield Occurrence(statement.name_span, VALUE, statement.name, True, scope)
            yield from _expression(statement.value, scope)
        elif isinstance(statement, ast.Expect):
            if len(statement.subject) == 1 and statement.args is None:
                name = statement.subject[0]
                if name in tensors:
                    yield Occurrence(statement.subject_span, TENSOR, name, False, scope)
        elif isinstance(statement, ast.ChainStatement):
            yield from _chain(statement.chain, scope, tensors)
            if statement.label is not None and statement.label_span is not None:
                tensors.add(statement.label)
                yield Occurrence(statement.label_span, TENSOR, statement.label, True, scope)


def _chain(chain: ast.Chain, scope: str, tensors: set[str]) -> Iterator[Occurrence]:
    for index, call in enumerate(chain.calls):
        reference = (index == 0 and call.name in tensors and not call.args
                     and call.body is None and call.repeat is None)
        if reference:
            yield Occurrence(call.name_span, TENSOR, call.name, False, scope)
            continue
        yield from _call(call, scope, tensors)


def _call(call: ast.Call, scope: str, tensors: set[str]) -> Iterator[Occurrence]:
    yield Occurrence(call.name_span, LAYER, call.name, False, scope, call)
    for arg in call.args:
        if isinstance(arg.value, ast.Name) and arg.name is None and arg.value.name in tensors:
            yield Occurrence(arg.value.span, TENSOR, arg.value.name, False, scope)
        else:
            yield from _expression(arg.value, scope)
    if call.repeat is not None:
        yield from _expression(call.repeat, scope)
    for body in (call.body, call.shortcut):
        if body is not None:
            yield from _body(body, scope, tensors)


def _expression(expr: ast.Expr, scope: str) -> Iterator[Occurrence]:
    stack: list[ast.Expr] = [expr]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Name):
            yield Occurrence(item.span, VALUE, item.name, False, scope)
        elif isinstance(item, ast.BinOp):
            stack.extend((item.right, item.left))
        elif isinstance(item, ast.Neg):
            stack.append(item.operand)
        elif isinstance(item, ast.Tuple):
            stack.extend(reversed(item.items))


def contains(span: Span, line: int, col: int) -> bool:
    """Whether a 1-based position lies in a span (its end included, where a cursor may sit)."""
    if (line, col) < (span.line, span.col):
        return False
    return (line, col) <= (span.end_line, span.end_col)


def at(found: list[Occurrence], line: int, col: int) -> Occurrence | None:
    """The innermost occurrence at a position."""
    best: Occurrence | None = None
    for occurrence in found:
        if contains(occurrence.span, line, col) and (
            best is None or _size(occurrence.span) < _size(best.span)
        ):
            best = occurrence
    return best


def _size(span: Span) -> tuple[int, int]:
    return (span.end_line - span.line, span.end_col - span.col)
