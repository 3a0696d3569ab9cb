"""``expect`` lines: assertions on parameter counts, tensor shapes, MACs and memory in a spec."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from cnndsl import ir
from cnndsl.analysis import params as param_analysis
from cnndsl.diagnostics import Code, Reporter, did_you_mean
from cnndsl.symbolic import Dim, Poly, dim_str
from cnndsl.syntax import ast

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}

_BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
_COUNT_UNITS = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}

# A subject takes the network and the expect's call arguments and returns (value, how it reads).
Subject = Callable[[ir.Network, dict[str, Any]], tuple[float, str]]


def _params(network: ir.Network, args: dict[str, Any]) -> tuple[float, str]:
    return network.total_params, f"{network.total_params:,}"


def _trainable(network: ir.Network, args: dict[str, Any]) -> tuple[float, str]:
    return network.trainable_params, f"{network.trainable_params:,}"


def _buffers(network: ir.Network, args: dict[str, Any]) -> tuple[float, str]:
    count = param_analysis.total_buffers(network)
    return count, f"{count:,}"


def _macs(network: ir.Network, args: dict[str, Any]) -> tuple[float, str]:
    from cnndsl.analysis import flops

    count = flops.total_macs(network)
    return count, f"{count:,}"


def _memory(kind: str) -> Subject:
    def subject(network: ir.Network, args: dict[str, Any]) -> tuple[float, str]:
        from cnndsl.analysis import memory

        value = memory.peak_bytes(network, kind, **args)
        return value, memory.format_bytes(value)

    return subject


SUBJECTS: dict[tuple[str, ...], Subject] = {
    ("params",): _params,
    ("parameters",): _params,
    ("trainable", "params"): _trainable,
    ("buffers",): _buffers,
    ("macs",): _macs,
    ("inference", "memory"): _memory("inference"),
    ("training", "memory"): _memory("training"),
}


def _receptive_field(network: ir.Network, node: ir.AnyNode) -> tuple[float, str]:
    from cnndsl.analysis import receptive

    field = node.receptive_field
    if field is None:
        raise ValueError(f"'{node.name}' does not depend on an input")
    return receptive.largest_side(field), receptive.size_text(field)


# Subjects of one tensor, named as the call's argument: ``expect receptive field(layer4) >= 427``.
TENSOR_SUBJECTS: dict[tuple[str, ...], Callable[[ir.Network, ir.AnyNode], tuple[float, str]]] = {
    ("receptive", "field"): _receptive_field,
}


def _quantity(expect: ast.Expect, value: ast.Expr, memory: bool) -> float | None:
    if isinstance(value, ast.Number):
        return value.value
    if isinstance(value, ast.Quantity):
        units = _BYTE_UNITS if memory else _COUNT_UNITS
        if value.unit not in units:
            return None
        return value.value * units[value.unit]
    return None


def _subject_args(expect: ast.Expect, reporter: Reporter) -> dict[str, Any] | None:
    args: dict[str, Any] = {}
    for arg in expect.args or ():
        if arg.name is None:
            reporter.error(Code.ARGUMENT_TYPE, arg.span, "write arguments by name, e.g. batch=32")
            return None
        value = arg.value
        if isinstance(value, ast.Number):
            args[arg.name] = value.value
        elif isinstance(value, ast.Name):
            args[arg.name] = value.name
        elif isinstance(value, ast.Quantity):
            args[arg.name] = value.value * _BYTE_UNITS.get(value.unit, 1)
        else:
            reporter.error(Code.ARGUMENT_TYPE, arg.span, f"unsupported value for '{arg.name}'")
            return None
    return args


def _dims(values: tuple[ast.Expr, ...], network: ir.Network,
          sizes: Mapping[str, int]) -> list[Dim | None]:
    dims: list[Dim | None] = []
    for value in values:
        dims.append(_dim(value, network, sizes))
    return dims


def _dim(value: ast.Expr, network: ir.Network, sizes: Mapping[str, int]) -> Dim | None:
    if isinstance(value, ast.Number) and isinstance(value.value, int):
        return value.value
    if isinstance(value, ast.Name):
        if value.name in sizes:  # bound with --input H=...: the expect holds for that size
            return sizes[value.name]
        return Poly.symbol(value.name) if value.name in network.symbols else None
    if isinstance(value, ast.BinOp):
        left, right = _dim(value.left, network, sizes), _dim(value.right, network, sizes)
        if left is None or right is None:
            return None
        if value.op == "+":
            return left + right  # type: ignore[operator]
        if value.op == "-":
            return left - right  # type: ignore[operator]
        if value.op == "*":
            return left * right  # type: ignore[operator]
        if value.op in ("/", "//") and isinstance(right, int) and right > 0:
            return left // right if isinstance(left, int) else left.floordiv(right)
    return None


def check_expects(network: ir.Network, expects: list[ast.Expect], reporter: Reporter,
                  sizes: Mapping[str, int] | None = None) -> list[ir.ExpectResult]:
    """Evaluate each expect line; a failed one is a diagnostic at its line."""
    results: list[ir.ExpectResult] = []
    for expect in expects:
        result = _check_one(network, expect, reporter, sizes or {})
        if result is not None:
            results.append(result)
    return results


def _check_one(network: ir.Network, expect: ast.Expect, reporter: Reporter,
               sizes: Mapping[str, int]) -> ir.ExpectResult | None:
    text = " ".join(expect.subject)
    compare = _COMPARE[expect.op]
    if expect.subject in TENSOR_SUBJECTS:
        return _check_tensor_subject(network, expect, reporter)
    subject = SUBJECTS.get(expect.subject)
    if subject is not None:
        args = _subject_args(expect, reporter)
        if args is None:
            return None
        memory = expect.subject[-1] == "memory"
        wanted = _quantity(expect, expect.value[0], memory) if len(expect.value) == 1 else None
        if wanted is None:
            reporter.error(Code.ARGUMENT_TYPE, expect.span,
                           f"'{text}' is compared with a number"
                           + (" or a size such as 16GiB" if memory else ""))
            return None
        try:
            actual, shown = subject(network, args)
        except (TypeError, ValueError) as error:
            reporter.error(Code.BAD_VALUE, expect.subject_span, f"{text}: {error}")
            return None
        ok = compare(actual, wanted)
        return _result(expect, text, shown, ok, reporter)
    if len(expect.subject) == 1 and expect.args is None:
        name = expect.subject[0]
        try:
            node = network.node(name)
        except KeyError:
            known = [*_tensor_names(network), *(" ".join(k) for k in SUBJECTS)]
            reporter.error(Code.UNDEFINED_NAME, expect.subject_span,
                           f"nothing named '{name}' to expect",
                           did_you_mean(name, known))
            return None
        if expect.op not in ("==", "!="):
            reporter.error(Code.ARGUMENT_TYPE, expect.span, "shapes compare with == or !=")
            return None
        values = expect.value
        if not values or not (isinstance(values[0], ast.Name) and values[0].name == "N"):
            reporter.error(Code.ARGUMENT_TYPE, expect.span,
                           "a shape starts with the batch N, e.g. N x 1000")
            return None
        wanted_dims = _dims(values[1:], network, sizes)
        shown = ir.shape_str(node.shape)
        ok = compare(node.shape is not None and list(node.shape) == wanted_dims, True)
        return _result(expect, name, shown, ok, reporter)
    reporter.error(Code.UNKNOWN_PARAMETER, expect.subject_span, f"cannot expect '{text}'",
                   "expect params, trainable params, buffers, macs, a tensor's shape, "
                   "receptive field(TENSOR), inference memory(...) or training memory(...)")
    return None


def _check_tensor_subject(network: ir.Network, expect: ast.Expect,
                          reporter: Reporter) -> ir.ExpectResult | None:
    text = " ".join(expect.subject)
    args = expect.args or ()
    if len(args) != 1 or args[0].name is not None or not isinstance(args[0].value, ast.Name):
        reporter.error(Code.ARGUMENT_TYPE, expect.subject_span,
                       f"'{text}' takes one tensor, e.g. {text}(layer4)")
        return None
    name = args[0].value.name
    try:
        node = network.node(name)
    except KeyError:
        reporter.error(Code.UNDEFINED_NAME, args[0].span, f"nothing named '{name}' to expect",
                       did_you_mean(name, _tensor_names(network)))
        return None
    wanted = _quantity(expect, expect.value[0], False) if len(expect.value) == 1 else None
    if wanted is None:
        reporter.error(Code.ARGUMENT_TYPE, expect.span, f"'{text}' is compared with a number")
        return None
    try:
        actual, shown = TENSOR_SUBJECTS[expect.subject](network, node)
    except ValueError as error:
        reporter.error(Code.BAD_VALUE, args[0].span, f"{text}: {error}")
        return None
    ok = _COMPARE[expect.op](actual, wanted)
    return _result(expect, f"{text}({name})", shown, ok, reporter)


def _tensor_names(network: ir.Network) -> list[str]:
    """What an expect can name: labels, outputs, layer paths and block-instance paths."""
    return [*network.tensors, *network.outputs, *(n.name for n in network.nodes),
            *(i.path for i in network.instances)]


def _result(expect: ast.Expect, text: str, shown: str, ok: bool,
            reporter: Reporter) -> ir.ExpectResult:
    if not ok:
        reporter.error(Code.EXPECT_FAILED, expect.span,
                       f"expectation failed: {text} is {shown}")
    return ir.ExpectResult(text=_source_text(expect), actual=shown, ok=ok, span=expect.span)


def _source_text(expect: ast.Expect) -> str:
    subject = " ".join(expect.subject)
    if expect.subject in TENSOR_SUBJECTS and expect.args and len(expect.args) == 1 \
            and isinstance(expect.args[0].value, ast.Name):
        subject += f"({expect.args[0].value.name})"
    elif expect.args is not None:
        subject += "(...)"
    return f"{subject} {expect.op} " + " x ".join(_value_text(v) for v in expect.value)


def _value_text(value: ast.Expr) -> str:
    if isinstance(value, ast.Number):
        return str(value.value)
    if isinstance(value, ast.Name):
        return value.name
    if isinstance(value, ast.Quantity):
        return f"{value.value:g}{value.unit}"
    return "..."


__all__ = ["SUBJECTS", "TENSOR_SUBJECTS", "check_expects", "dim_str"]
