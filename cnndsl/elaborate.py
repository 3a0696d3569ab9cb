"""Elaboration: surface AST to IR. Expands blocks, repeats and composites, evaluates constants and
arithmetic, names every node by its spec path, and infers each node's shape as it is created.

Shapes are inferred here, not in a later pass, because the language needs them while expanding:
``in`` (a block's input channel count), a convolution's input channels, and the residual's
automatic projection all depend on the shape that reaches them. The rules themselves live in
``shapes.py``; this module only applies them and turns failures into diagnostics.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnndsl import ir, layers, shapes
from cnndsl.diagnostics import CnnError, Code, Diagnostic, Reporter, Span, did_you_mean
from cnndsl.layers import ArgumentError, ScaleLiteral, SizeLiteral, Word
from cnndsl.symbolic import Dim, Poly, simplify
from cnndsl.syntax import ast
from cnndsl.syntax.parser import SourceError, parse, read_source

MAX_NODES = 250_000
MAX_BLOCK_DEPTH = 64
MAX_IMPORT_DEPTH = 32
MAX_INT = 2**62

Shape = tuple[Dim, ...]


FAILED = ""  # the tensor of a statement that failed: later uses stay silent


class _Poisoned:
    """The value of a constant whose definition failed: later uses stay silent."""


POISONED = _Poisoned()


class _Fail(Exception):
    """Ends the current statement after its error has been reported."""


class _Limit(Exception):
    """A resource limit was hit: stop elaborating altogether."""


@dataclass
class Definitions:
    """Everything the files define: blocks, constants and networks, with their sources."""

    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    constants: list[ast.Const] = field(default_factory=list)
    networks: dict[str, ast.NetworkDef] = field(default_factory=dict)
    main_networks: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


@dataclass
class Frame:
    """The names visible inside one body: variables and labelled tensors."""

    env: dict[str, Any]
    tensors: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)


@dataclass
class Scope:
    """A naming scope: the path prefix and the per-word counters behind ``conv1``, ``conv2``."""

    prefix: str
    counters: dict[str, int] = field(default_factory=dict)
    block_index: int = 0
    numbered: bool = False  # block instances are 0, 1, 2 ... (a chain of blocks only)

    def child(self, name: str, numbered: bool = False) -> Scope:
        """A nested scope ``prefix.name.``."""
        return Scope(f"{self.prefix}{name}.", numbered=numbered)


# Loading files and imports -------------------------------------------------------------------


def load_definitions(text: str, file: str, reporter: Reporter) -> Definitions:
    """Parse a file and everything it imports; collect the definitions."""
    definitions = Definitions()
    _load_file(text, file, definitions, reporter, stack=[], main=True)
    return definitions


def _load_file(text: str, file: str, definitions: Definitions, reporter: Reporter,
               stack: list[str], main: bool) -> None:
    definitions.sources[file] = text
    try:
        module = parse(text, file)
    except CnnError as error:
        reporter.diagnostics.extend(error.diagnostics)
        return
    base = Path(file).parent if file != "<string>" else Path.cwd()
    for item in module.items:
        if isinstance(item, ast.Import):
            _load_import(item, base, definitions, reporter, [*stack, file])
        elif isinstance(item, ast.Const):
            definitions.constants.append(item)
        elif isinstance(item, ast.BlockDef | ast.NetworkDef):
            _define(item, definitions, reporter, main)


def _define(item: ast.BlockDef | ast.NetworkDef, definitions: Definitions, reporter: Reporter,
            main: bool) -> None:
    table: dict[str, Any] = (
        definitions.blocks if isinstance(item, ast.BlockDef) else definitions.networks
    )
    if item.name in definitions.blocks or item.name in definitions.networks:
        reporter.error(Code.DUPLICATE_NAME, item.name_span, f"'{item.name}' is defined twice")
        return
    if item.name in layers.LAYERS or item.name in layers.COMPOSITES:
        reporter.error(Code.DUPLICATE_NAME, item.name_span,
                       f"'{item.name}' is a built-in layer and cannot be redefined")
        return
    table[item.name] = item
    if main and isinstance(item, ast.NetworkDef):
        definitions.main_networks.append(item.name)


def _load_import(item: ast.Import, base: Path, definitions: Definitions, reporter: Reporter,
                 stack: list[str]) -> None:
    try:
        path = (base / item.path).resolve()
    except (OSError, ValueError, RuntimeError) as error:  # NUL bytes, symlink loops
        reporter.error(Code.IO, item.span, f"cannot import '{item.path}': {error}")
        return
    name = str(path)
    if len(stack) > MAX_IMPORT_DEPTH:
        reporter.error(Code.LIMIT, item.span, f"imports nest deeper than {MAX_IMPORT_DEPTH}")
        return
    if name in stack or any(Path(s).resolve() == path for s in stack if s != "<string>"):
        chain = " -> ".join([*(Path(s).name for s in stack), path.name])
        reporter.error(Code.IMPORT_CYCLE, item.span, f"import cycle: {chain}")
        return
    if name in definitions.sources:
        return  # already loaded through another import
    try:
        text = read_source(path)
    except SourceError as error:
        reporter.error(error.code, item.span, f"cannot import '{item.path}': {error.reason}")
        return
    _load_file(text, name, definitions, reporter, stack, main=False)


# Elaboration ----------------------------------------------------------------------------------


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
        self.nodes: list[ir.AnyNode] = []
        self.shapes: dict[str, Shape | None] = {}
        self.taken: set[str] = set()
        self.suffixes: dict[str, int] = {}  # _unique: the last suffix tried per path
        self.instances: list[ir.BlockInstance] = []
        self.symbols: list[str] = []
        self.depth = 0
        self.globals: dict[str, Any] = {}
        self.used_params: set[tuple[str, str]] = set()
        self.image: tuple[Dim, Dim] | None = None  # the first feature-map input's H x W
        self.mentions: dict[tuple[str, str], bool] = {}

    # diagnostics ------------------------------------------------------------------------------
    def fail(self, code: Code, span: Span, message: str, *notes: str) -> _Fail:
        """Report an error and return the exception that ends the statement."""
        self.reporter.error(code, span, message, *notes)
        return _Fail()

    # expressions ------------------------------------------------------------------------------
    def evaluate(self, expr: ast.Expr, env: dict[str, Any]) -> Any:
        """The value of an expression: int, float, bool, Word, tuple, SizeLiteral or Poly."""
        match expr:
            case ast.Number(value=value):
                if isinstance(value, int) and value > MAX_INT:
                    raise self.fail(Code.LIMIT, expr.span,
                                    "integer overflow: the value is too large")
                return value
            case ast.Name(name=name):
                if name in env:
                    if env[name] is POISONED:
                        raise _Fail()  # its definition failed and was reported
                    return env[name]
                if name in ("true", "false"):
                    return name == "true"
                return Word(name)
            case ast.Str(value=value):
                return value
            case ast.Size(dims=dims):
                if any(d > MAX_INT for d in dims):
                    raise self.fail(Code.LIMIT, expr.span,
                                    "integer overflow: the value is too large")
                return SizeLiteral(dims)
            case ast.Scale(value=value):
                return ScaleLiteral(value)
            case ast.Tuple(items=items):
                return tuple(self.evaluate(item, env) for item in items)
            case ast.Neg(operand=operand):
                value = self._number(self.evaluate(operand, env), operand, env)
                return -value
            case ast.BinOp():
                return self._binary(expr, env)
            case ast.Quantity():
                return (expr.value, expr.unit)
        raise AssertionError(expr)

    def _defined(self, value: Any, expr: ast.Expr, env: dict[str, Any]) -> Any:
        """The value, unless it is a bare word where a value was needed: an undefined name."""
        if isinstance(value, Word):
            raise self.fail(Code.UNDEFINED_NAME, expr.span, f"'{value}' is not defined",
                            did_you_mean(value, env))
        return value

    def _number(self, value: Any, expr: ast.Expr, env: dict[str, Any]) -> Any:
        value = self._defined(value, expr, env)
        if isinstance(value, bool) or not isinstance(value, int | float | Poly):
            raise self.fail(Code.ARGUMENT_TYPE, expr.span, "arithmetic needs numbers")
        return value

    def _binary(self, expr: ast.BinOp, env: dict[str, Any]) -> Any:
        left = self._number(self.evaluate(expr.left, env), expr.left, env)
        right = self._number(self.evaluate(expr.right, env), expr.right, env)
        op = expr.op
        if op in ("/", "//", "%"):
            if isinstance(right, Poly) or right == 0:
                raise self.fail(Code.BAD_VALUE, expr.right.span,
                                "division by zero" if right == 0 else "cannot divide by a symbol")
            if isinstance(left, Poly):
                if not isinstance(right, int) or right < 0 or op == "%":
                    raise self.fail(Code.BAD_VALUE, expr.span, "unsupported symbolic arithmetic")
                return simplify(left.floordiv(right))
            if op == "/":
                if isinstance(left, int) and isinstance(right, int):
                    if left % right:
                        raise self.fail(Code.INEXACT_DIVISION, expr.span,
                                        f"{left} / {right} is not a whole number",
                                        "use // to round down")
                    return left // right
                return left / right
            if op == "//":
                return left // right
            return left % right
        symbolic = isinstance(left, Poly) or isinstance(right, Poly)
        if symbolic and (isinstance(left, float) or isinstance(right, float)):
                raise self.fail(Code.BAD_VALUE, expr.span, "unsupported symbolic arithmetic")
        result = {"+": lambda: left + right, "-": lambda: left - right,
                  "*": lambda: left * right}[op]()
        if isinstance(result, int) and abs(result) > MAX_INT:
            raise self.fail(Code.LIMIT, expr.span, "integer overflow: the value is too large")
        return simplify(result) if isinstance(result, Poly) else result

    # the network --------------------------------------------------------------------------
    def network(self, definition: ast.NetworkDef) -> ir.Network:
        """Elaborate a network definition into IR."""
        env = self._globals()
        params = self._bind_network_params(definition, env)
        frame = Frame(env={**env, **params})
        scope = Scope("")
        outputs: dict[str, str] = {}
        current: str | None = None
        last_label: str | None = None
        expects: list[ast.Expect] = []
        inputs: list[tuple[str, Span]] = []
        statement_results: list[tuple[ast.ChainStatement, str | None]] = []
        try:
            statements = definition.body.statements
            for index, statement in enumerate(statements):
                if isinstance(statement, ast.Input):
                    name = self._input(statement, frame)
                    if name is not None:
                        inputs.append((name, statement.name_span))
                        if current is None:
                            current = name
                    elif current is None:
                        current = FAILED  # the input's error was reported; stay silent
                    continue
                if isinstance(statement, ast.Output):
                    for ref in statement.names:
                        node = frame.tensors.get(ref.name)
                        if node is None:
                            self.reporter.error(
                                Code.UNDEFINED_NAME, ref.span, f"no tensor named '{ref.name}'",
                                did_you_mean(ref.name, frame.tensors))
                        elif ref.name in outputs:
                            self.reporter.error(Code.DUPLICATE_NAME, ref.span,
                                                f"'{ref.name}' is already an output")
                        else:
                            outputs[ref.name] = node
                            frame.used.add(ref.name)
                    continue
                if isinstance(statement, ast.Expect):
                    expects.append(statement)
                    continue
                after = _first_call(statements, index + 1, frame)
                result = self._statement(statement, current, frame, scope, after)
                if isinstance(statement, ast.ChainStatement):
                    statement_results.append((statement, result))
                    last_label = statement.label
                current = result
        except _Limit:
            pass
        if not inputs and not self.reporter.errors:
            self.reporter.error(Code.MISSING_ARGUMENT, definition.name_span,
                                f"network '{definition.name}' declares no input",
                                "add a line such as 'input image: 3 x 224 x 224'")
        if not outputs and current is not None:
            outputs[last_label or "output"] = current
        network = ir.Network(
            name=definition.name, file=definition.span.file, nodes=self.nodes,
            inputs=[name for name, _ in inputs], outputs=outputs,
            tensors={**frame.tensors}, instances=self.instances, symbols=self.symbols,
        )
        self._check_usage(network, inputs, statement_results)
        network.__dict__["_expects"] = expects
        return network

    def _globals(self) -> dict[str, Any]:
        env: dict[str, Any] = {}
        for const in self.definitions.constants:
            if const.name in env:
                self.reporter.error(Code.DUPLICATE_NAME, const.name_span,
                                    f"constant '{const.name}' is defined twice")
                continue
            try:
                env[const.name] = self.evaluate(const.value, env)
            except _Fail:
                env[const.name] = POISONED
        self.globals = env
        return env

    def _bind_network_params(self, definition: ast.NetworkDef, env: dict[str, Any]) -> dict:
        bound: dict[str, Any] = {}
        names = {p.name for p in definition.params}
        for key in self.arguments:
            if key not in names:
                self.reporter.error(
                    Code.UNKNOWN_PARAMETER, definition.name_span,
                    f"network '{definition.name}' has no parameter '{key}'",
                    did_you_mean(key, names))
        for param in definition.params:
            if param.name in self.arguments:
                bound[param.name] = self.arguments[param.name]
            elif param.default is not None:
                try:
                    bound[param.name] = self.evaluate(param.default, {**env, **bound})
                except _Fail:
                    bound[param.name] = POISONED
            else:
                self.reporter.error(Code.MISSING_ARGUMENT, param.span,
                                    f"network parameter '{param.name}' has no value",
                                    "give it a default or pass it with --set")
                bound[param.name] = POISONED
        return bound

    def _input(self, statement: ast.Input, frame: Frame) -> str | None:
        dims = list(statement.dims)
        if dims and isinstance(dims[0], ast.Name) and dims[0].name == "N":
            dims = dims[1:]  # the batch is implicit; allow it to be written
        values: list[Dim] = []
        try:
            for dim in dims:
                if isinstance(dim, ast.Name) and dim.name not in frame.env:
                    if dim.name in self.sizes:
                        values.append(self.sizes[dim.name])
                    else:
                        if dim.name not in self.symbols:
                            self.symbols.append(dim.name)
                        values.append(Poly.symbol(dim.name))
                    continue
                value = self.evaluate(dim, frame.env)
                if isinstance(value, bool) or not isinstance(value, int | Poly):
                    raise self.fail(Code.ARGUMENT_TYPE, dim.span, "an input size must be a number")
                if isinstance(value, int) and value <= 0:
                    raise self.fail(Code.BAD_VALUE, dim.span, "an input size must be above zero")
                values.append(value)
        except _Fail:
            return None
        if len(values) not in (1, 3):
            self.reporter.error(Code.RANK_MISMATCH, statement.span,
                                "an input is C x H x W (a feature map) or F (a feature vector)")
            return None
        if self.input_override is not None and not any(
            isinstance(n, ir.Input) for n in self.nodes
        ):
            if len(self.input_override) != len(values):
                self.reporter.error(Code.RANK_MISMATCH, statement.span,
                                    f"--input gives {len(self.input_override)} sizes but "
                                    f"'{statement.name}' has {len(values)}")
                return None
            values = list(self.input_override)
        if not isinstance(values[0], int):
            self.reporter.error(Code.BAD_VALUE, statement.dims[0].span,
                                "the channel count of an input must be a number")
            return None
        name = self._claim(statement.name, statement.name_span, frame, Scope(""))
        if name is None:
            return None
        node = ir.Input(name=name, declared=tuple(values), span=statement.span)
        self._add(node, [])
        if self.image is None and len(values) == 3:
            self.image = (values[1], values[2])
        frame.tensors[statement.name] = name
        return name

    def _claim(self, label: str, span: Span, frame: Frame, scope: Scope) -> str | None:
        path = scope.prefix + label
        if label in frame.tensors or path in self.taken:
            self.reporter.error(Code.DUPLICATE_NAME, span, f"'{label}' is already defined")
            return None
        return path

    # statements ---------------------------------------------------------------------------
    def _statement(self, statement: ast.Statement, current: str | None, frame: Frame,
                   scope: Scope, after: ast.Call | None = None) -> str | None:
        if isinstance(statement, ast.Const):
            if statement.name in frame.env and statement.name not in self.globals:
                self.reporter.error(Code.DUPLICATE_NAME, statement.name_span,
                                    f"'{statement.name}' is already defined")
                return current
            try:
                frame.env[statement.name] = self.evaluate(statement.value, frame.env)
            except _Fail:
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
        except _Fail:
            if statement.label:
                frame.tensors.setdefault(statement.label, FAILED)
            return FAILED

    def _chain_statement(self, statement: ast.ChainStatement, current: str | None, frame: Frame,
                         scope: Scope, after: ast.Call | None = None) -> str | None:
        label = statement.label
        calls = statement.chain.calls
        own_name: str | None = None
        inner = scope
        if label is not None:
            path = self._claim(label, statement.label_span or statement.span, frame, scope)
            if path is None:
                raise _Fail()
            if self._lone_call(calls, frame):
                own_name = path
            else:
                inner = scope.child(label, numbered=self._only_blocks(calls, frame))
            self.taken.add(path)
        result = self._chain(statement.chain, current, frame, inner, own_name, after)
        if label is not None and result is not None:
            frame.tensors[label] = result
        return result

    def _chain(self, chain: ast.Chain, current: str | None, frame: Frame, scope: Scope,
               own_name: str | None = None, after: ast.Call | None = None) -> str | None:
        for index, call in enumerate(chain.calls):
            if index == 0 and self._is_tensor_reference(call, frame):
                frame.used.add(call.name)
                current = frame.tensors[call.name] or None
                if current is None:
                    raise _Fail()  # the tensor's own statement failed and was reported
                continue
            following = chain.calls[index + 1] if index + 1 < len(chain.calls) else after
            first = index == 0
            current = self._call(call, current, frame, scope, following, own_name, first)
        return current

    def _after_reference(self, calls: tuple[ast.Call, ...], frame: Frame) -> tuple[ast.Call, ...]:
        """The calls of a chain without its leading tensor reference, if it has one."""
        if calls and self._is_tensor_reference(calls[0], frame):
            return calls[1:]
        return calls

    def _lone_call(self, calls: tuple[ast.Call, ...], frame: Frame) -> bool:
        """A chain of one layer, block or tensor op: it takes its label as its path.

        `p4: c4 -> conv 256 1x1` counts too: it names its layer `p4`, as `p4: conv 256 1x1` does.
        """
        calls = self._after_reference(calls, frame)
        if len(calls) != 1 or calls[0].repeat is not None or calls[0].body is not None:
            return False
        name = calls[0].name
        return name in layers.LAYERS or name in layers.TENSOR_OPS or name in self.definitions.blocks

    def _only_blocks(self, calls: tuple[ast.Call, ...], frame: Frame) -> bool:
        """Whether a chain (after a leading tensor reference) calls nothing but blocks."""
        calls = self._after_reference(calls, frame)
        return bool(calls) and all(call.name in self.definitions.blocks for call in calls)

    def _is_tensor_reference(self, call: ast.Call, frame: Frame) -> bool:
        return (call.name in frame.tensors and not call.args and call.body is None
                and call.repeat is None)

    # calls ------------------------------------------------------------------------------------
    def _call(self, call: ast.Call, x: str | None, frame: Frame, scope: Scope,
              following: ast.Call | None, own_name: str | None, first: bool) -> str | None:
        if call.repeat is not None:
            count = self._repeat_count(call, frame)
            single = ast.Call(call.name, call.args, call.span, call.name_span, call.body,
                              call.shortcut)
            for _ in range(count):
                x = self._call(single, x, frame, scope, following, None, first)
                first = False
            return x
        name = call.name
        if x == FAILED:
            # The input is unknown after an earlier error; a misspelt word is still worth saying.
            if name not in self._known_words(frame):
                self._unknown_layer(call, frame)
            raise _Fail()
        if name in layers.TENSOR_OPS and call.body is None:
            return self._tensor_op(call, x, frame, scope, first, own_name)
        if x is None:
            raise self.fail(Code.UNDEFINED_NAME, call.span,
                            f"'{name}' has no input: declare an input or start from a tensor")
        if name in layers.COMPOSITES:
            return self._composite(call, x, frame, scope)
        if call.body is not None or call.shortcut is not None:
            raise self.fail(Code.SYNTAX, call.span, f"'{name}' does not take a body")
        if name in self.definitions.blocks:
            return self._block(call, x, frame, scope, own_name)
        if name in layers.LAYERS:
            return self._layer(call, x, frame, scope, following, own_name)
        if name in frame.tensors:
            raise self.fail(Code.SYNTAX, call.name_span,
                            f"tensor '{name}' can only start a chain")
        raise self._unknown_layer(call, frame)

    def _known_words(self, frame: Frame) -> list[str]:
        return [*layers.LAYERS, *layers.COMPOSITES, *layers.TENSOR_OPS, *self.definitions.blocks,
                *frame.tensors]

    def _unknown_layer(self, call: ast.Call, frame: Frame) -> _Fail:
        known = self._known_words(frame)
        return self.fail(Code.UNKNOWN_LAYER, call.name_span,
                         f"unknown layer or block '{call.name}'",
                         did_you_mean(call.name, known))

    def _repeat_count(self, call: ast.Call, frame: Frame) -> int:
        assert call.repeat is not None
        value = self._defined(self.evaluate(call.repeat, frame.env), call.repeat, frame.env)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(Code.ARGUMENT_TYPE, call.repeat.span,
                            "a repeat count must be a whole number")
        if value < 1:
            raise self.fail(Code.BAD_VALUE, call.repeat.span,
                            f"a repeat count must be at least 1, got {value}")
        if value > MAX_NODES:
            self.reporter.error(Code.LIMIT, call.repeat.span,
                                f"repeat count {value} exceeds the limit of {MAX_NODES} layers")
            raise _Limit()
        return value

    def _auto_name(self, word: str, scope: Scope) -> str:
        count = scope.counters.get(word, 0)
        while True:
            count += 1
            path = f"{scope.prefix}{word}{count}"
            if path not in self.taken:
                scope.counters[word] = count
                self.taken.add(path)
                return path

    def _unique(self, path: str) -> str:
        # Names are only ever added, so the search resumes where it last stopped for this path:
        # 20,000 `se` in one scope took minutes when every call started again at 2.
        suffix = self.suffixes.get(path, 1)
        candidate = path if suffix == 1 else f"{path}{suffix}"
        while candidate in self.taken:
            suffix += 1
            candidate = f"{path}{suffix}"
        self.suffixes[path] = suffix
        self.taken.add(candidate)
        return candidate

    def _add(self, node: Any, inputs: list[str]) -> str:
        if len(self.nodes) >= MAX_NODES:
            self.reporter.error(Code.LIMIT, node.span,
                                f"the network has more than {MAX_NODES} layers")
            raise _Limit()
        in_shapes = [self.shapes.get(name) for name in inputs]
        shape: Shape | None = None
        if all(s is not None for s in in_shapes):
            try:
                shape = shapes.infer(node, in_shapes)  # type: ignore[arg-type]
            except shapes.ShapeError as error:
                self.reporter.error(error.code, node.span, error.message, *error.notes)
                raise _Fail() from None
            if any(isinstance(d, int) and d > MAX_INT for d in shape):
                raise self.fail(Code.LIMIT, node.span,
                                f"integer overflow: the output {shapes.fmt(shape)} is too large")
        node.shape = shape
        self.nodes.append(node)
        self.shapes[node.name] = shape
        self.taken.add(node.name)
        return node.name

    def _layer(self, call: ast.Call, x: str, frame: Frame, scope: Scope,
               following: ast.Call | None, own_name: str | None) -> str:
        layer = layers.LAYERS[call.name]
        args = self._bind_layer_args(layer, call, frame.env)
        shape = self.shapes.get(x)
        if shape is None:
            raise _Fail()
        context = layers.Context(
            input_shape=shape,
            followed_by_batchnorm=following is not None and following.name == "bn",
            image_size=self._image_size(),
        )
        try:
            built = layer.build(args, context)
        except ArgumentError as error:
            raise self.fail(Code.BAD_VALUE, call.span, error.message) from None
        path = own_name or self._auto_name(call.name, scope)
        for suffix, fields in built:
            name = f"{path}.{suffix}" if suffix else path
            node_type = layers.NODE_TYPES[fields.pop("kind")]
            node = node_type(name=name, inputs=[x], span=call.span, **fields)
            x = self._add(node, [x])
        return x

    def _image_size(self) -> tuple[Dim, Dim] | None:
        return self.image  # kept as it is set: scanning the nodes per layer was quadratic

    def _bind_layer_args(self, layer: layers.Layer, call: ast.Call, env: dict[str, Any]) -> dict:
        aliases = {"pad": "padding"}
        given: dict[str, tuple[Any, ast.Arg]] = {}
        flagged: dict[str, Any] = {}  # set by a flag word (`bilinear`): already a final value
        positional = list(layer.positional)
        for arg in call.args:
            value = self.evaluate(arg.value, env)
            is_flag = (arg.name is None and isinstance(value, Word) and value in layer.flags
                       and value not in env)
            if is_flag:
                target, value = layer.flags[value]
            elif arg.name is None:
                if not positional:
                    raise self.fail(Code.TOO_MANY_ARGUMENTS, arg.span,
                                    f"'{layer.word}' takes {len(layer.positional)} positional "
                                    f"argument{'s' if len(layer.positional) != 1 else ''}",
                                    self._usage(layer))
                target = positional.pop(0)
            else:
                target = aliases.get(arg.name, arg.name)
                if target not in layer.params:
                    raise self.fail(Code.UNKNOWN_PARAMETER, arg.name_span or arg.span,
                                    f"'{layer.word}' has no parameter '{arg.name}'",
                                    did_you_mean(arg.name, layer.params) or self._usage(layer))
                if target in positional:
                    positional.remove(target)
            if target in given or target in flagged:
                raise self.fail(Code.DUPLICATE_NAME, arg.span,
                                f"'{target}' is given twice to '{layer.word}'")
            if is_flag:
                flagged[target] = value
            else:
                given[target] = (value, arg)
        bound: dict[str, Any] = {}
        for name, param in layer.params.items():
            if name in flagged:
                bound[name] = flagged[name]
            elif name not in given:
                if param.default is layers.REQUIRED:
                    raise self.fail(Code.MISSING_ARGUMENT, call.span,
                                    f"'{layer.word}' needs '{name}'", self._usage(layer))
                bound[name] = param.default
            else:
                value, arg = given[name]
                try:
                    bound[name] = param.coerce(value)
                except ArgumentError as error:
                    code = {"undefined": Code.UNDEFINED_NAME, "value": Code.BAD_VALUE}.get(
                        error.code, Code.ARGUMENT_TYPE)
                    note = did_you_mean(value, env) if isinstance(value, Word) else ""
                    raise self.fail(code, arg.value.span, f"{layer.word} {name}: {error.message}",
                                    note) from None
        return bound

    def _usage(self, layer: layers.Layer) -> str:
        params = " ".join(f"{p.upper()}" for p in layer.positional)
        keywords = ", ".join(k for k in layer.params if k not in layer.positional)
        usage = f"usage: {layer.word} {params}".rstrip()
        return f"{usage}; keywords: {keywords}" if keywords else usage

    def _tensor_op(self, call: ast.Call, x: str | None, frame: Frame, scope: Scope,
                   first: bool, own_name: str | None = None) -> str:
        sources: list[str] = [] if first or x is None else [x]
        for arg in call.args:
            if arg.name is not None or not isinstance(arg.value, ast.Name):
                raise self.fail(Code.ARGUMENT_TYPE, arg.span,
                                f"'{call.name}' takes tensor names, such as {call.name}(a, b)")
            ref = arg.value.name
            if ref not in frame.tensors:
                raise self.fail(Code.UNDEFINED_NAME, arg.span, f"no tensor named '{ref}'",
                                did_you_mean(ref, frame.tensors))
            frame.used.add(ref)
            if not frame.tensors[ref]:
                raise _Fail()
            sources.append(frame.tensors[ref])
        if len(sources) < 2:
            raise self.fail(Code.MISSING_ARGUMENT, call.span,
                            f"'{call.name}' needs at least two tensors")
        kind = layers.TENSOR_OPS[call.name]
        name = own_name or self._auto_name(call.name, scope)
        node = layers.NODE_TYPES[kind](name=name, inputs=sources,
                                       span=call.span)
        return self._add(node, sources)

    # composites -----------------------------------------------------------------------------
    def _composite(self, call: ast.Call, x: str, frame: Frame, scope: Scope) -> str:
        name = call.name
        if name == "se":
            return self._squeeze_excitation(call, x, frame, scope)
        if call.body is None:
            raise self.fail(Code.SYNTAX, call.span, f"'{name}' needs a body: {name} {{ ... }}")
        if call.shortcut is not None and name != "residual":
            raise self.fail(Code.SYNTAX, call.span, "only 'residual' takes a shortcut")
        if call.body.bars and name != "concat":
            raise self.fail(Code.SYNTAX, call.body.span,
                            "'|' separates branches of concat only; use new lines or '->'")
        if name == "residual":
            return self._residual(call, x, frame, scope)
        if name == "concat":
            return self._concat_branches(call, x, frame, scope)
        return self._scale(call, x, frame, scope)

    def _sequence(self, body: ast.Body, x: str, frame: Frame, scope: Scope) -> str:
        current: str | None = x
        statements = body.statements
        for index, statement in enumerate(statements):
            after = _first_call(statements, index + 1, frame)
            current = self._statement(statement, current, frame, scope, after)
            if not current:
                raise _Fail()
        assert current is not None
        return current

    def _composite_options(self, call: ast.Call, frame: Frame, allowed: dict[str, Any]) -> dict:
        options = dict(allowed)
        for arg in call.args:
            if arg.name is None or arg.name not in allowed:
                raise self.fail(Code.UNKNOWN_PARAMETER, arg.span,
                                f"'{call.name}' takes only {', '.join(allowed) or 'no arguments'}",
                                did_you_mean(arg.name or "", allowed))
            value = self.evaluate(arg.value, frame.env)
            try:
                options[arg.name] = (
                    layers.boolean(value) if isinstance(allowed[arg.name], bool)
                    else layers.positive_int(value)
                )
            except ArgumentError as error:
                raise self.fail(Code.ARGUMENT_TYPE, arg.value.span, error.message) from None
        return options

    def _residual(self, call: ast.Call, x: str, frame: Frame, scope: Scope) -> str:
        assert call.body is not None
        options = self._composite_options(call, frame, {"project": True})
        main = self._sequence(call.body, x, frame, scope)
        main_shape, in_shape = self.shapes[main], self.shapes[x]
        if call.shortcut is not None:
            short = self._sequence(call.shortcut, x, frame, scope.child(self._unique_child(
                scope, "downsample")))
        elif main_shape == in_shape or main_shape is None or in_shape is None:
            short = x
        elif not options["project"]:
            short = x  # the add reports the mismatch
        else:
            short = self._projection(call, x, main, scope)
        node = ir.Add(name=self._auto_name("add", scope), inputs=[main, short], span=call.span)
        return self._add(node, [main, short])

    def _unique_child(self, scope: Scope, name: str) -> str:
        path = self._unique(scope.prefix + name)
        return path[len(scope.prefix):]

    def _projection(self, call: ast.Call, x: str, main: str, scope: Scope) -> str:
        in_shape, out_shape = self.shapes[x], self.shapes[main]
        assert in_shape is not None and out_shape is not None
        if len(in_shape) != 3 or len(out_shape) != 3:
            raise self.fail(Code.RANK_MISMATCH, call.span,
                            "a residual needs feature maps on both paths")
        stride = []
        for before, after in zip(in_shape[1:], out_shape[1:], strict=True):
            if before == after:
                stride.append(1)
                continue
            factor = _integer_ratio(before, after)
            if factor is None:
                raise self.fail(Code.SPATIAL_MISMATCH, call.span,
                                f"the residual changes the size from {shapes.fmt(in_shape)} to "
                                f"{shapes.fmt(out_shape)}, which no 1x1 strided projection gives",
                                "write the shortcut explicitly: residual {...} shortcut {...}")
            stride.append(factor)
        if not isinstance(in_shape[0], int) or not isinstance(out_shape[0], int):
            raise self.fail(Code.CHANNEL_MISMATCH, call.span, "channel counts must be numbers")
        prefix = self._unique(scope.prefix + "downsample")
        conv = ir.Conv(name=f"{prefix}.0", inputs=[x], span=call.span, in_channels=in_shape[0],
                       out_channels=out_shape[0], kernel=(1, 1), stride=(stride[0], stride[1]),
                       bias=False)
        y = self._add(conv, [x])
        bn = ir.BatchNorm(name=f"{prefix}.1", inputs=[y], span=call.span,
                          channels=out_shape[0])
        return self._add(bn, [y])

    def _concat_branches(self, call: ast.Call, x: str, frame: Frame, scope: Scope) -> str:
        assert call.body is not None
        if call.args:
            raise self.fail(Code.TOO_MANY_ARGUMENTS, call.span, "'concat { }' takes no arguments")
        outputs: list[str] = []
        failed = False
        for index, statement in enumerate(call.body.statements, start=1):
            if not isinstance(statement, ast.ChainStatement):
                raise self.fail(Code.SYNTAX, statement.span, "each branch of concat is a chain")
            name = self._unique_child(scope, statement.label or f"branch{index}")
            calls = statement.chain.calls
            try:
                if self._lone_call(calls, frame):
                    output = self._chain(statement.chain, x, frame, scope, scope.prefix + name)
                else:
                    numbered = self._only_blocks(calls, frame)
                    output = self._chain(statement.chain, x, frame,
                                         scope.child(name, numbered=numbered))
                outputs.append(output or "")
            except _Fail:
                failed = True
        if failed or not all(outputs):
            raise _Fail()
        if len(outputs) < 2:
            raise self.fail(Code.MISSING_ARGUMENT, call.span, "concat needs at least two branches")
        node = ir.Concat(name=self._auto_name("concat", scope), inputs=outputs, span=call.span)
        return self._add(node, outputs)

    def _scale(self, call: ast.Call, x: str, frame: Frame, scope: Scope) -> str:
        assert call.body is not None
        self._composite_options(call, frame, {})
        gate = self._sequence(call.body, x, frame, scope)
        node = ir.Mul(name=self._auto_name("mul", scope), inputs=[x, gate], span=call.span)
        return self._add(node, [x, gate])

    def _squeeze_excitation(self, call: ast.Call, x: str, frame: Frame, scope: Scope) -> str:
        options = self._composite_options(call, frame, {"reduction": 16, "channels": 0})
        shape = self.shapes[x]
        if shape is None:
            raise _Fail()
        if len(shape) != 3 or not isinstance(shape[0], int):
            raise self.fail(Code.RANK_MISMATCH, call.span, "se needs a feature map input")
        channels = shape[0]
        squeezed = options["channels"]
        if not squeezed:
            if channels % options["reduction"]:
                raise self.fail(Code.INEXACT_DIVISION, call.span,
                                f"{channels} channels / reduction {options['reduction']} is not "
                                "a whole number", "give channels= explicitly")
            squeezed = channels // options["reduction"]
        inner = scope.child(self._unique_child(scope, "se"))
        pooled = self._add(ir.GlobalPool(name=f"{inner.prefix}pool", inputs=[x], mode="avg",
                                         span=call.span), [x])
        fc1 = self._add(ir.Conv(name=f"{inner.prefix}fc1", inputs=[pooled], span=call.span,
                                in_channels=channels, out_channels=squeezed, kernel=(1, 1)),
                        [pooled])
        act = self._add(ir.Activation(name=f"{inner.prefix}relu", inputs=[fc1], function="relu",
                                      span=call.span), [fc1])
        fc2 = self._add(ir.Conv(name=f"{inner.prefix}fc2", inputs=[act], span=call.span,
                                in_channels=squeezed, out_channels=channels, kernel=(1, 1)),
                        [act])
        gate = self._add(ir.Activation(name=f"{inner.prefix}gate", inputs=[fc2],
                                       function="sigmoid", span=call.span), [fc2])
        node = ir.Mul(name=f"{inner.prefix}scale", inputs=[x, gate], span=call.span)
        return self._add(node, [x, gate])

    # blocks -----------------------------------------------------------------------------------
    def _block(self, call: ast.Call, x: str, frame: Frame, scope: Scope,
               own_name: str | None) -> str:
        definition = self.definitions.blocks[call.name]
        arguments = self._bind_block_args(definition, call, frame.env)
        shape = self.shapes.get(x)
        if shape is None:
            raise _Fail()
        if own_name is not None:
            path = own_name
        elif scope.numbered:
            # A chain of blocks reads as a sequence: layer1.0, layer1.1 (torchvision's layout).
            path = self._unique(f"{scope.prefix}{scope.block_index}")
            scope.block_index += 1
        else:
            path = self._auto_name(call.name, scope)
        env = {**self.globals, **arguments, "in": shape[0]}
        inner = Frame(env=env)
        with self._nested(call):
            output = self._sequence(definition.body, x, inner, Scope(f"{path}."))
        for name in arguments:
            if name not in inner.used:
                key = (definition.name, name)
                if key not in self.mentions:  # one walk of the body per block, not per call
                    self.mentions[key] = _mentions(definition.body, name)
                if not self.mentions[key]:
                    self.used_params.add(key)
        self.instances.append(ir.BlockInstance(
            path=path, block=definition.name, span=call.span, input=x, output=output,
            arguments={k: _jsonable(v) for k, v in arguments.items()},
        ))
        return output

    @contextmanager
    def _nested(self, call: ast.Call) -> Iterator[None]:
        self.depth += 1
        if self.depth > MAX_BLOCK_DEPTH:
            self.reporter.error(Code.LIMIT, call.span,
                                f"blocks nest deeper than {MAX_BLOCK_DEPTH} (a block that calls "
                                "itself?)")
            raise _Limit()
        try:
            yield
        finally:
            self.depth -= 1

    def _bind_block_args(self, definition: ast.BlockDef, call: ast.Call,
                         env: dict[str, Any]) -> dict[str, Any]:
        params = [p.name for p in definition.params]
        bound: dict[str, Any] = {}
        position = 0
        for arg in call.args:
            if arg.name is None:
                if position >= len(params):
                    raise self.fail(Code.TOO_MANY_ARGUMENTS, arg.span,
                                    f"block '{definition.name}' takes {len(params)} argument"
                                    f"{'s' if len(params) != 1 else ''}")
                target = params[position]
                position += 1
            else:
                if arg.name not in params:
                    raise self.fail(Code.UNKNOWN_PARAMETER, arg.name_span or arg.span,
                                    f"block '{definition.name}' has no parameter '{arg.name}'",
                                    did_you_mean(arg.name, params))
                target = arg.name
            if target in bound:
                raise self.fail(Code.DUPLICATE_NAME, arg.span, f"'{target}' is given twice")
            bound[target] = self._defined(self.evaluate(arg.value, env), arg.value, env)
        block_env = dict(self.globals)
        for param in definition.params:
            if param.name in bound:
                block_env[param.name] = bound[param.name]
                continue
            if param.default is None:
                raise self.fail(Code.MISSING_ARGUMENT, call.span,
                                f"block '{definition.name}' needs '{param.name}'")
            bound[param.name] = self.evaluate(param.default, block_env)
            block_env[param.name] = bound[param.name]
        return bound

    # checks after the whole network ---------------------------------------------------------
    def _check_usage(self, network: ir.Network, inputs: list[tuple[str, Span]],
                     statements: list[tuple[ast.ChainStatement, str | None]]) -> None:
        if self.reporter.errors:
            return  # unused names after an error are usually its echo
        readers = network.consumers()
        outputs = set(network.outputs.values())
        for name, span in inputs:
            if not readers.get(name) and name not in outputs:
                self.reporter.error(Code.UNUSED_NAME, span, f"input '{name}' is never used")
        for statement, result in statements:
            if result and not readers.get(result) and result not in outputs:
                span = statement.label_span or statement.span
                what = f"'{statement.label}'" if statement.label else "this statement"
                self.reporter.error(Code.UNUSED_NAME, span,
                                    f"the result of {what} is never used",
                                    "read it in a later statement or list it in 'output'")
        for block, param in sorted(self.used_params):
            definition = self.definitions.blocks[block]
            span = next(p.span for p in definition.params if p.name == param)
            self.reporter.warning(Code.UNUSED_NAME, span,
                                  f"parameter '{param}' of block '{block}' is never used")


def _first_call(statements: Sequence[ast.Statement], start: int,
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


def _integer_ratio(before: Dim, after: Dim) -> int | None:
    """The stride s with ceil(before / s) == after, where one exists."""
    if isinstance(before, int) and isinstance(after, int):
        if after < 1:
            return None
        # ceil(before / s) falls as s grows: the first s that reaches `after` is the only one
        # that can equal it (a loop over s took minutes for a billion-pixel side).
        stride = max(2, -(-before // after))
        return stride if stride <= before and -(-before // stride) == after else None
    for s in range(2, 65):
        if simplify(Poly.floordiv(before + (s - 1), s) if isinstance(before, Poly) else 0) == after:
            return s
    return None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Poly):
        return str(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def elaborate(text: str, file: str = "<string>", *, network: str | None = None,
              sizes: dict[str, int] | None = None, arguments: dict[str, Any] | None = None,
              input_override: tuple[int, ...] | None = None,
              ) -> tuple[ir.Network, list[Diagnostic], list[ast.Expect], dict[str, str]]:
    """Parse and elaborate; returns the network, warnings, its expects and the sources read."""
    # Parsing and elaboration allocate many small objects and free almost none: the cyclic
    # collector's full passes over the growing heap would make checking superlinear in size.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _elaborate(text, file, network=network, sizes=sizes, arguments=arguments,
                          input_override=input_override)
    finally:
        if collecting:
            gc.enable()


def _elaborate(text: str, file: str = "<string>", *, network: str | None = None,
               sizes: dict[str, int] | None = None, arguments: dict[str, Any] | None = None,
               input_override: tuple[int, ...] | None = None,
               ) -> tuple[ir.Network, list[Diagnostic], list[ast.Expect], dict[str, str]]:
    reporter = Reporter()
    definitions = load_definitions(text, file, reporter)
    try:
        return _elaborate_network(definitions, reporter, file, network, sizes, arguments,
                                  input_override)
    except CnnError as error:
        error.sources = {**definitions.sources, **error.sources}
        raise


def _elaborate_network(definitions: Definitions, reporter: Reporter, file: str,
                       network: str | None, sizes: dict[str, int] | None,
                       arguments: dict[str, Any] | None, input_override: tuple[int, ...] | None,
                       ) -> tuple[ir.Network, list[Diagnostic], list[ast.Expect], dict[str, str]]:
    reporter.raise_if_errors()
    chosen = _choose_network(definitions, network, file, reporter)
    reporter.raise_if_errors()
    assert chosen is not None
    elaborator = Elaborator(definitions, reporter, sizes, arguments, input_override)
    definition = definitions.networks[chosen]
    try:
        result = elaborator.network(definition)
    except RecursionError:
        # The parser bounds nesting; this guards callers that start with a deep stack.
        reporter.error(Code.LIMIT, definition.name_span, "the network nests too deeply")
        raise CnnError(reporter.diagnostics) from None
    if reporter.errors:
        raise CnnError(reporter.diagnostics)
    expects = result.__dict__.pop("_expects", [])
    return result, reporter.diagnostics, expects, definitions.sources


def _choose_network(definitions: Definitions, name: str | None, file: str,
                    reporter: Reporter) -> str | None:
    if name is not None:
        if name not in definitions.networks:
            reporter.error(Code.NO_NETWORK, Span(file=file), f"no network named '{name}'",
                           did_you_mean(name, definitions.networks))
            return None
        return name
    if len(definitions.main_networks) == 1:
        return definitions.main_networks[0]
    if not definitions.main_networks:
        reporter.error(Code.NO_NETWORK, Span(file=file), "the file defines no network",
                       "a file of blocks is meant to be imported by one that does")
        return None
    listed = ", ".join(definitions.main_networks)
    reporter.error(Code.NO_NETWORK, Span(file=file),
                   f"the file defines several networks ({listed}); choose one with --network")
    return None
