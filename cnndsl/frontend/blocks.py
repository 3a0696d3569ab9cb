"""Block calls: a user-defined block expanded at its call site, and repeated calls (``* n``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from cnndsl import ir
from cnndsl.diagnostics import Code
from cnndsl.frontend.arguments import block_signature
from cnndsl.frontend.failures import Fail, Limit
from cnndsl.frontend.graph import MAX_NODES
from cnndsl.frontend.naming import Frame, Scope
from cnndsl.symbolic import Poly
from cnndsl.syntax import ast

if TYPE_CHECKING:
    from cnndsl.frontend.statements import Elaborator

MAX_BLOCK_DEPTH = 64


def block(el: Elaborator, call: ast.Call, x: str, frame: Frame, scope: Scope,
          own_name: str | None) -> str:
    """Expand one block call from tensor ``x`` under its path; the block's last tensor."""
    definition = el.definitions.blocks[call.name]
    arguments = el.binder.bind(block_signature(definition), call, frame.env,
                               lambda: dict(el.globals))
    shape = el.graph.shapes.get(x)
    if shape is None:
        raise Fail()
    if own_name is not None:
        path = own_name
    elif scope.numbered:
        # A chain of blocks reads as a sequence: layer1.0, layer1.1 (torchvision's layout).
        path = el.names.unique(f"{scope.prefix}{scope.block_index}")
        scope.block_index += 1
    else:
        path = el.names.auto_name(call.name, scope)
    env = {**el.globals, **arguments, "in": shape[0]}
    inner = Frame(env=env, prefix=f"{path}.")
    with _nested(el, call):
        output = el.sequence(definition.body, x, inner, Scope(f"{path}."))
    for name in arguments:
        if name not in inner.used:
            key = (definition.name, name)
            if key not in el.mentions:  # one walk of the body per block, not per call
                el.mentions[key] = _mentions(definition.body, name)
            if not el.mentions[key]:
                el.used_params.add(key)
    el.paths[path] = output
    el.instances.append(ir.BlockInstance(
        path=path, block=definition.name, span=call.span, input=x, output=output,
        arguments={k: _jsonable(v) for k, v in arguments.items()},
    ))
    return output


def repeat_count(el: Elaborator, call: ast.Call, frame: Frame) -> int:
    """The ``n`` of ``call * n``: a whole number from 1 to the node limit."""
    assert call.repeat is not None
    expressions = el.expressions
    value = expressions.defined(expressions.evaluate(call.repeat, frame.env), call.repeat,
                                frame.env)
    if isinstance(value, bool) or not isinstance(value, int):
        raise el.fail(Code.ARGUMENT_TYPE, call.repeat.span,
                      "a repeat count must be a whole number")
    if value < 1:
        raise el.fail(Code.BAD_VALUE, call.repeat.span,
                      f"a repeat count must be at least 1, got {value}")
    if value > MAX_NODES:
        el.reporter.error(Code.LIMIT, call.repeat.span,
                          f"repeat count {value} exceeds the limit of {MAX_NODES} layers")
        raise Limit()
    return value


def warn_unused_parameters(el: Elaborator) -> None:
    """A warning for each block parameter that no call's body reads."""
    for name, param in sorted(el.used_params):
        definition = el.definitions.blocks[name]
        span = next(p.span for p in definition.params if p.name == param)
        el.reporter.warning(Code.UNUSED_NAME, span,
                            f"parameter '{param}' of block '{name}' is never used")


@contextmanager
def _nested(el: Elaborator, call: ast.Call) -> Iterator[None]:
    el.depth += 1
    if el.depth > MAX_BLOCK_DEPTH:
        el.reporter.error(Code.LIMIT, call.span,
                          f"blocks nest deeper than {MAX_BLOCK_DEPTH} (a block that calls "
                          "itself?)")
        raise Limit()
    start = len(el.reporter.diagnostics)
    try:
        yield
    finally:
        el.depth -= 1
        _note_call_site(el, call, start)


def _note_call_site(el: Elaborator, call: ast.Call, start: int) -> None:
    # An error inside a block from another file points into that file; say which call of this
    # file led there (each level of imported calls adds its own note, like a traceback).
    diagnostics = el.reporter.diagnostics
    note = f"in block '{call.name}' called at {call.name_span}"
    for index in range(start, len(diagnostics)):
        diagnostic = diagnostics[index]
        if diagnostic.span.file != call.name_span.file and note not in diagnostic.notes:
            diagnostics[index] = replace(diagnostic, notes=(*diagnostic.notes, note))


def _mentions(body: ast.Body, name: str) -> bool:
    """Whether a name occurs anywhere in a body (parameters used only in nested calls count)."""
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Name) and item.name == name:
            return True
        if isinstance(item, tuple | list):
            stack.extend(item)
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(getattr(item, f) for f in item.__dataclass_fields__ if f != "span")
    return False


def _jsonable(value: Any) -> Any:
    if isinstance(value, Poly):
        return str(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
