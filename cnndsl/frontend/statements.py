"""Statements: the walk over a body's chains, handing each call to what its word names.

A word is a layer, a tensor operation, a composite, a block or a labelled tensor; this module
decides which and keeps the chain's current tensor, and the modules beside it build the nodes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from cnndsl import ir, layers
from cnndsl.diagnostics import Code, Reporter, Span, did_you_mean
from cnndsl.frontend import blocks, composites, layer_calls
from cnndsl.frontend.arguments import Binder
from cnndsl.frontend.expressions import Expressions
from cnndsl.frontend.failures import FAILED, POISONED, Fail, fail
from cnndsl.frontend.graph import Graph
from cnndsl.frontend.imports import Definitions
from cnndsl.frontend.naming import Frame, Names, Scope
from cnndsl.syntax import ast


class Elaborator:
    """Builds the IR of one network; reports into a Reporter and keeps going after errors."""

    def __init__(self, definitions: Definitions, reporter: Reporter,
                 sizes: dict[str, int] | None = None, arguments: dict[str, Any] | None = None,
                 input_override: tuple[int, ...] | None = None):
        self.definitions = definitions
        self.input_override = input_override
        self.reporter = reporter
        self.sizes = sizes or {}
        self.arguments = arguments or {}
        self.expressions = Expressions(reporter)
        self.binder = Binder(self.expressions)
        self.names = Names(reporter)
        self.graph = Graph(reporter, self.names)
        self.instances: list[ir.BlockInstance] = []
        self.symbols: list[str] = []
        self.depth = 0
        self.globals: dict[str, Any] = {}
        self.used_params: set[tuple[str, str]] = set()
        self.mentions: dict[tuple[str, str], bool] = {}
        self.labels: dict[str, list[tuple[Span, Span]]] | None = None  # label -> (at, within)
        self.paths: dict[str, str] = {}  # spec path (label, node, block instance) -> tensor

    def fail(self, code: Code, span: Span, message: str, *notes: str) -> Fail:
        """Report an error and return the exception that ends the statement."""
        return fail(self.reporter, code, span, message, *notes)

    def statement(self, statement: ast.Statement, current: str | None, frame: Frame,
                  scope: Scope, after: ast.Call | None = None) -> str | None:
        """Elaborate one statement of a body; returns the current tensor after it."""
        if isinstance(statement, ast.Const):
            if statement.name in frame.env and statement.name not in self.globals:
                self.reporter.error(Code.DUPLICATE_NAME, statement.name_span,
                                    f"'{statement.name}' is already defined")
                return current
            try:
                frame.env[statement.name] = self.expressions.evaluate(statement.value, frame.env)
            except Fail:
                frame.env[statement.name] = POISONED
            return current
        if isinstance(statement, ast.Input | ast.Output | ast.Expect):
            kind = type(statement).__name__.lower()
            self.reporter.error(Code.SYNTAX, statement.span,
                                f"'{kind}' belongs in a network body, not in a block")
            return current
        assert isinstance(statement, ast.ChainStatement)
        try:
            return self._chain_statement(statement, current, frame, scope, after)
        except Fail:
            if statement.label:
                frame.tensors.setdefault(statement.label, FAILED)
            return FAILED

    def sequence(self, body: ast.Body, x: str, frame: Frame, scope: Scope) -> str:
        """Elaborate a body as one sequence from ``x``; its last tensor."""
        current: str | None = x
        statements = body.statements
        for index, statement in enumerate(statements):
            after = first_call(statements, index + 1, frame)
            current = self.statement(statement, current, frame, scope, after)
            if not current:
                raise Fail()
        assert current is not None
        return current

    def _chain_statement(self, statement: ast.ChainStatement, current: str | None, frame: Frame,
                         scope: Scope, after: ast.Call | None = None) -> str | None:
        label = statement.label
        calls = statement.chain.calls
        own_name: str | None = None
        inner = scope
        if label is not None:
            path = self.names.claim(label, statement.label_span or statement.span, frame, scope)
            if path is None:
                raise Fail()
            if statement.numbered:
                inner = scope.child(label, sequence=True)
            elif self.lone_call(calls, frame):
                own_name = path
            else:
                inner = scope.child(label, numbered=self.only_blocks(calls, frame))
            self.names.taken.add(path)
        repeats: list[list[str]] = []
        result = self.chain(statement.chain, current, frame, inner, own_name, after, repeats)
        if label is not None and result is not None:
            frame.tensors[label] = result
            self.paths[scope.prefix + label] = result
            if repeats:
                frame.repeats[label] = repeats[0] if len(repeats) == 1 else None
        return result

    def chain(self, chain: ast.Chain, current: str | None, frame: Frame, scope: Scope,
              own_name: str | None = None, after: ast.Call | None = None,
              repeats: list[list[str]] | None = None) -> str | None:
        """Elaborate the calls of a chain in turn; the tensor it ends with. The outputs of each
        repeated call's instances are appended to ``repeats``."""
        for index, call in enumerate(chain.calls):
            if index == 0 and self._is_tensor_reference(call, frame):
                frame.used.add(call.name)
                current = self.tensor(call.name, frame) or None
                if current is None:
                    raise Fail()  # the tensor's own statement failed and was reported
                continue
            following = chain.calls[index + 1] if index + 1 < len(chain.calls) else after
            first = index == 0
            if call.repeat is not None:
                outputs = self.repeat(call, current, frame, scope, following, first)
                if repeats is not None:
                    repeats.append(outputs)
                current = outputs[-1]
            else:
                current = self.call(call, current, frame, scope, following, own_name, first)
        return current

    def repeat(self, call: ast.Call, x: str | None, frame: Frame, scope: Scope,
               following: ast.Call | None, first: bool) -> list[str]:
        """``call x N``: the call N times in a row; each instance's output."""
        count = blocks.repeat_count(self, call, frame)
        single = ast.Call(call.name, call.args, call.span, call.name_span, call.body,
                          call.shortcut)
        outputs: list[str] = []
        for _ in range(count):
            x = self.call(single, x, frame, scope, following, None, first)
            if not x:
                raise Fail()
            outputs.append(x)
            first = False
        return outputs

    def tensor(self, name: str, frame: Frame) -> str | None:
        """The tensor a reference names: a label of the body, else a path inside it (a layer
        ``features.3``, a block instance ``layer1.0``); None when it names nothing."""
        if name in frame.tensors:
            return frame.tensors[name]
        path = frame.prefix + name
        if path in self.paths:
            return self.paths[path]
        return path if path in self.graph.shapes else None

    def tensors_of(self, frame: Frame) -> list[str]:
        """The names a body can refer to, for "did you mean"."""
        return [*frame.tensors, *(p[len(frame.prefix):] for p in self.paths
                                  if p.startswith(frame.prefix))]

    def _after_reference(self, calls: tuple[ast.Call, ...], frame: Frame) -> tuple[ast.Call, ...]:
        """The calls of a chain without its leading tensor reference, if it has one."""
        if calls and self._is_tensor_reference(calls[0], frame):
            return calls[1:]
        return calls

    def lone_call(self, calls: tuple[ast.Call, ...], frame: Frame) -> bool:
        """A chain of one layer, block or tensor op: it takes its label as its path.

        `p4: c4 -> conv 256 1x1` counts too: it names its layer `p4`, as `p4: conv 256 1x1` does.
        """
        calls = self._after_reference(calls, frame)
        if len(calls) != 1 or calls[0].repeat is not None or calls[0].body is not None:
            return False
        name = calls[0].name
        return name in layers.LAYERS or name in layers.TENSOR_OPS or name in self.definitions.blocks

    def only_blocks(self, calls: tuple[ast.Call, ...], frame: Frame) -> bool:
        """Whether a chain (after a leading tensor reference) calls nothing but blocks."""
        calls = self._after_reference(calls, frame)
        return bool(calls) and all(call.name in self.definitions.blocks for call in calls)

    def _is_tensor_reference(self, call: ast.Call, frame: Frame) -> bool:
        return (not call.args and call.body is None and call.repeat is None
                and (call.name in frame.tensors or ("." in call.name
                     and self.tensor(call.name, frame) is not None)))

    def call(self, call: ast.Call, x: str | None, frame: Frame, scope: Scope,
             following: ast.Call | None, own_name: str | None, first: bool) -> str | None:
        """Elaborate one call from tensor ``x``; the tensor it produces."""
        if call.repeat is not None:
            return self.repeat(call, x, frame, scope, following, first)[-1]
        name = call.name
        if scope.sequence and own_name is None and name not in layers.COMPOSITES:
            own_name = self.names.unique(scope.next_index())
        elif scope.sequence and own_name is None:
            scope = scope.child(self.names.unique(scope.next_index())[len(scope.prefix):])
        if x == FAILED:
            # The input is unknown after an earlier error; a misspelt word is still worth saying.
            if name not in self._known_words(frame):
                self._unknown_layer(call, frame)
            raise Fail()
        if name in layers.TENSOR_OPS and call.body is None:
            return layer_calls.tensor_op(self, call, x, frame, scope, first, own_name)
        if x is None:
            raise self.fail(Code.UNDEFINED_NAME, call.span,
                            f"'{name}' has no input: declare an input or start from a tensor")
        if name in layers.COMPOSITES:
            return composites.composite(self, call, x, frame, scope)
        if call.body is not None or call.shortcut is not None:
            raise self.fail(Code.SYNTAX, call.span, f"'{name}' does not take a body")
        if name in self.definitions.blocks:
            return blocks.block(self, call, x, frame, scope, own_name)
        if name in layers.LAYERS:
            return layer_calls.layer(self, call, x, frame, scope, following, own_name)
        if name in frame.tensors:
            raise self.fail(Code.SYNTAX, call.name_span,
                            f"tensor '{name}' can only start a chain")
        raise self._unknown_layer(call, frame)

    def _known_words(self, frame: Frame) -> list[str]:
        return [*layers.LAYERS, *layers.COMPOSITES, *layers.TENSOR_OPS, *self.definitions.blocks,
                *frame.tensors]

    def _unknown_layer(self, call: ast.Call, frame: Frame) -> Fail:
        later = self._labelled_later(call.name, call.name_span)
        if later is not None:
            return self.fail(Code.UNDEFINED_NAME, call.name_span,
                             f"tensor '{call.name}' is used before it is defined",
                             f"'{call.name}' is defined later, at line {later.line}; a statement "
                             "can read only the tensors of statements above it")
        known = self._known_words(frame)
        return self.fail(Code.UNKNOWN_LAYER, call.name_span,
                         f"unknown layer or block '{call.name}'",
                         did_you_mean(call.name, known))

    def _labelled_later(self, name: str, where: Span) -> Span | None:
        """The label ``name`` of a statement after ``where`` in the same definition, if any."""
        if self.labels is None:  # walked once, on the first unknown word
            self.labels = {}
            definitions: list[ast.BlockDef | ast.NetworkDef] = [
                *self.definitions.blocks.values(), *self.definitions.networks.values()]
            for definition in definitions:
                for label, span in _labels(definition.body):
                    self.labels.setdefault(label, []).append((span, definition.span))
        for span, within in self.labels.get(name, []):
            if (span.file == where.file and (span.line, span.col) > (where.line, where.col)
                    and within.line <= where.line <= within.end_line):
                return span
        return None


def _labels(body: ast.Body) -> Iterator[tuple[str, Span]]:
    """Every statement label in a body and the bodies nested in it, with its span."""
    stack: list[Any] = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.ChainStatement) and item.label is not None:
            yield item.label, item.label_span or item.span
        if isinstance(item, tuple | list):
            stack.extend(item)
        elif hasattr(item, "__dataclass_fields__"):
            stack.extend(getattr(item, f) for f in item.__dataclass_fields__ if f != "span")


def first_call(statements: Sequence[ast.Statement], start: int,
               frame: Frame) -> ast.Call | None:
    """The call that will read the current tensor next, if a statement from ``start`` on does."""
    # An index, not a slice of the rest: a slice per statement made long bodies quadratic.
    for index in range(start, len(statements)):
        statement = statements[index]
        if isinstance(statement, ast.Const | ast.Expect | ast.Output):
            continue
        if isinstance(statement, ast.ChainStatement):
            call = statement.chain.calls[0]
            return None if call.name in frame.tensors and not call.args else call
        return None
    return None
