"""A network body: its constants and parameters, inputs, outputs and the check for unused names."""

from __future__ import annotations

from typing import Any

from cnndsl import ir
from cnndsl.diagnostics import Code, Span, did_you_mean
from cnndsl.frontend import blocks
from cnndsl.frontend.failures import FAILED, POISONED, Fail, Limit
from cnndsl.frontend.naming import Frame, Scope
from cnndsl.frontend.statements import Elaborator, first_call
from cnndsl.symbolic import Dim, Poly
from cnndsl.syntax import ast


def network(el: Elaborator, definition: ast.NetworkDef) -> ir.Network:
    """Elaborate a network definition into IR."""
    env = _globals(el)
    params = _bind_network_params(el, definition, env)
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
                name = _input(el, statement, frame)
                if name is not None:
                    inputs.append((name, statement.name_span))
                    if current is None:
                        current = name
                elif current is None:
                    current = FAILED  # the input's error was reported; stay silent
                continue
            if isinstance(statement, ast.Output):
                _output(el, statement, frame, outputs)
                continue
            if isinstance(statement, ast.Expect):
                expects.append(statement)
                continue
            after = first_call(statements, index + 1, frame)
            result = el.statement(statement, current, frame, scope, after)
            if isinstance(statement, ast.ChainStatement):
                statement_results.append((statement, result))
                last_label = statement.label
            current = result
    except Limit:
        pass
    if not inputs and not el.reporter.errors:
        el.reporter.error(Code.MISSING_ARGUMENT, definition.name_span,
                          f"network '{definition.name}' declares no input",
                          "add a line such as 'input image: 3 x 224 x 224'")
    if not outputs and current is not None:
        outputs[last_label or "output"] = current
    result_network = ir.Network(
        name=definition.name, file=definition.span.file, nodes=el.graph.nodes,
        inputs=[name for name, _ in inputs], outputs=outputs,
        tensors={**frame.tensors}, instances=el.instances, symbols=el.symbols,
    )
    _check_usage(el, result_network, inputs, statement_results)
    result_network.__dict__["_expects"] = expects
    return result_network


def _output(el: Elaborator, statement: ast.Output, frame: Frame,
            outputs: dict[str, str]) -> None:
    for ref in statement.names:
        node = el.tensor(ref.name, frame)
        if node is None:
            el.reporter.error(Code.UNDEFINED_NAME, ref.span, f"no tensor named '{ref.name}'",
                              did_you_mean(ref.name, el.tensors_of(frame)))
        elif ref.name in outputs:
            el.reporter.error(Code.DUPLICATE_NAME, ref.span, f"'{ref.name}' is already an output")
        else:
            outputs[ref.name] = node
            frame.used.add(ref.name)


def _globals(el: Elaborator) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for const in el.definitions.constants:
        if const.name in env:
            el.reporter.error(Code.DUPLICATE_NAME, const.name_span,
                              f"constant '{const.name}' is defined twice")
            continue
        try:
            env[const.name] = el.expressions.evaluate(const.value, env)
        except Fail:
            env[const.name] = POISONED
    el.globals = env
    return env


def _bind_network_params(el: Elaborator, definition: ast.NetworkDef,
                         env: dict[str, Any]) -> dict[str, Any]:
    # The values come from the command line (--set), not from a call: no binder to share.
    bound: dict[str, Any] = {}
    names = {p.name for p in definition.params}
    for key in el.arguments:
        if key not in names:
            el.reporter.error(
                Code.UNKNOWN_PARAMETER, definition.name_span,
                f"network '{definition.name}' has no parameter '{key}'",
                did_you_mean(key, names))
    for param in definition.params:
        if param.name in el.arguments:
            bound[param.name] = el.arguments[param.name]
        elif param.default is not None:
            try:
                bound[param.name] = el.expressions.evaluate(param.default, {**env, **bound})
            except Fail:
                bound[param.name] = POISONED
        else:
            el.reporter.error(Code.MISSING_ARGUMENT, param.span,
                              f"network parameter '{param.name}' has no value",
                              "give it a default or pass it with --set")
            bound[param.name] = POISONED
    return bound


def _input(el: Elaborator, statement: ast.Input, frame: Frame) -> str | None:
    dims = list(statement.dims)
    if dims and isinstance(dims[0], ast.Name) and dims[0].name == "N":
        dims = dims[1:]  # the batch is implicit; allow it to be written
    values: list[Dim] = []
    try:
        for dim in dims:
            if isinstance(dim, ast.Name) and dim.name not in frame.env:
                if dim.name in el.sizes:
                    values.append(el.sizes[dim.name])
                else:
                    if dim.name not in el.symbols:
                        el.symbols.append(dim.name)
                    values.append(Poly.symbol(dim.name))
                continue
            value = el.expressions.evaluate(dim, frame.env)
            if isinstance(value, bool) or not isinstance(value, int | Poly):
                raise el.fail(Code.ARGUMENT_TYPE, dim.span, "an input size must be a number")
            if isinstance(value, int) and value <= 0:
                raise el.fail(Code.BAD_VALUE, dim.span, "an input size must be above zero")
            values.append(value)
    except Fail:
        return None
    if len(values) not in (1, 3):
        el.reporter.error(Code.RANK_MISMATCH, statement.span,
                          "an input is C x H x W (a feature map) or F (a feature vector)")
        return None
    if el.input_override is not None and not any(
        isinstance(n, ir.Input) for n in el.graph.nodes
    ):
        if len(el.input_override) != len(values):
            el.reporter.error(Code.RANK_MISMATCH, statement.span,
                              f"--input gives {len(el.input_override)} sizes but "
                              f"'{statement.name}' has {len(values)}")
            return None
        values = list(el.input_override)
    if not isinstance(values[0], int):
        el.reporter.error(Code.BAD_VALUE, statement.dims[0].span,
                          "the channel count of an input must be a number")
        return None
    name = el.names.claim(statement.name, statement.name_span, frame, Scope(""))
    if name is None:
        return None
    node = ir.Input(name=name, declared=tuple(values), span=statement.span)
    el.graph.add(node, [])
    if el.graph.image is None and len(values) == 3:
        el.graph.image = (values[1], values[2])
    frame.tensors[statement.name] = name
    return name


def _check_usage(el: Elaborator, network: ir.Network, inputs: list[tuple[str, Span]],
                 statements: list[tuple[ast.ChainStatement, str | None]]) -> None:
    if el.reporter.errors:
        return  # unused names after an error are usually its echo
    readers = network.consumers()
    outputs = set(network.outputs.values())
    for name, span in inputs:
        if not readers.get(name) and name not in outputs:
            el.reporter.error(Code.UNUSED_NAME, span, f"input '{name}' is never used")
    for statement, result in statements:
        if result and not readers.get(result) and result not in outputs:
            span = statement.label_span or statement.span
            what = f"'{statement.label}'" if statement.label else "this statement"
            el.reporter.error(Code.UNUSED_NAME, span,
                              f"the result of {what} is never used",
                              "read it in a later statement or list it in 'output'")
    blocks.warn_unused_parameters(el)
