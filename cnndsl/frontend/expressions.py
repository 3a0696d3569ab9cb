"""Expressions: literals, names, tuples and arithmetic (exact, or symbolic over input sizes)."""

from __future__ import annotations

from typing import Any

from cnndsl.diagnostics import Code, Reporter, did_you_mean
from cnndsl.frontend.failures import POISONED, Fail, fail
from cnndsl.frontend.functions import FUNCTIONS
from cnndsl.layers import ArgumentError, ScaleLiteral, SizeLiteral, Word
from cnndsl.symbolic import Poly, simplify
from cnndsl.syntax import ast

MAX_INT = 2**62


class Expressions:
    """Evaluates expressions in an environment; reports what cannot be evaluated."""

    def __init__(self, reporter: Reporter):
        self.reporter = reporter

    def fail(self, code: Code, expr: ast.Expr, message: str, *notes: str) -> Fail:
        """Report an error at an expression; return the exception that ends the statement."""
        return fail(self.reporter, code, expr.span, message, *notes)

    def evaluate(self, expr: ast.Expr, env: dict[str, Any]) -> Any:
        """The value of an expression: int, float, bool, Word, tuple, SizeLiteral or Poly."""
        match expr:
            case ast.Number(value=value):
                if isinstance(value, int) and value > MAX_INT:
                    raise self.fail(Code.LIMIT, expr, "integer overflow: the value is too large")
                return value
            case ast.Name(name=name):
                if name in env:
                    if env[name] is POISONED:
                        raise Fail()  # its definition failed and was reported
                    return env[name]
                if name in ("true", "false"):
                    return name == "true"
                return Word(name)
            case ast.Str(value=value):
                return value
            case ast.Size(dims=dims):
                if any(d > MAX_INT for d in dims):
                    raise self.fail(Code.LIMIT, expr, "integer overflow: the value is too large")
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
            case ast.Function():
                return self._function(expr, env)
            case ast.Splat():
                raise self.fail(Code.ARGUMENT_TYPE, expr,
                                f"'{expr.name}.*' stands for tensors: it goes in concat(...), "
                                "add(...) or mul(...)")
        raise AssertionError(expr)

    def _function(self, expr: ast.Function, env: dict[str, Any]) -> Any:
        function = FUNCTIONS.get(expr.name)
        if function is None:
            name = ast.Name(expr.name, expr.name_span)
            raise self.fail(Code.UNDEFINED_NAME, name, f"no function named '{expr.name}'",
                            did_you_mean(expr.name, FUNCTIONS))
        positional: list[Any] = []
        named: dict[str, Any] = {}
        for arg in expr.args:
            value = self._number(self.evaluate(arg.value, env), arg.value, env)
            if isinstance(value, Poly):
                raise self.fail(Code.BAD_VALUE, arg.value,
                                f"{expr.name}() needs numbers, not a symbolic size")
            if arg.name is None:
                if named:
                    raise self.fail(Code.SYNTAX, arg.value,
                                    "positional arguments come before named ones")
                positional.append(value)
            elif arg.name in named:
                raise self.fail(Code.DUPLICATE_NAME, arg.value,
                                f"'{arg.name}' is given twice to {expr.name}()")
            else:
                named[arg.name] = value
        try:
            result = function.apply(positional, named)
        except ArgumentError as error:
            raise self.fail(Code.BAD_VALUE if error.code == "value" else Code.ARGUMENT_TYPE,
                            expr, f"{expr.name}(): {error.message}", function.usage) from None
        if isinstance(result, int) and abs(result) > MAX_INT:
            raise self.fail(Code.LIMIT, expr, "integer overflow: the value is too large")
        return result

    def defined(self, value: Any, expr: ast.Expr, env: dict[str, Any]) -> Any:
        """The value, unless it is a bare word where a value was needed: an undefined name."""
        if isinstance(value, Word):
            raise self.fail(Code.UNDEFINED_NAME, expr, f"'{value}' is not defined",
                            did_you_mean(value, env))
        return value

    def _number(self, value: Any, expr: ast.Expr, env: dict[str, Any]) -> Any:
        value = self.defined(value, expr, env)
        if isinstance(value, bool) or not isinstance(value, int | float | Poly):
            raise self.fail(Code.ARGUMENT_TYPE, expr, "arithmetic needs numbers")
        return value

    def _binary(self, expr: ast.BinOp, env: dict[str, Any]) -> Any:
        left = self._number(self.evaluate(expr.left, env), expr.left, env)
        right = self._number(self.evaluate(expr.right, env), expr.right, env)
        op = expr.op
        if op in ("/", "//", "%"):
            if isinstance(right, Poly) or right == 0:
                raise self.fail(Code.BAD_VALUE, expr.right,
                                "division by zero" if right == 0 else "cannot divide by a symbol")
            if isinstance(left, Poly):
                if not isinstance(right, int) or right < 0 or op == "%":
                    raise self.fail(Code.BAD_VALUE, expr, "unsupported symbolic arithmetic")
                return simplify(left.floordiv(right))
            if op == "/":
                if isinstance(left, int) and isinstance(right, int):
                    if left % right:
                        raise self.fail(Code.INEXACT_DIVISION, expr,
                                        f"{left} / {right} is not a whole number",
                                        "use // to round down")
                    return left // right
                return left / right
            if op == "//":
                return left // right
            return left % right
        symbolic = isinstance(left, Poly) or isinstance(right, Poly)
        if symbolic and (isinstance(left, float) or isinstance(right, float)):
            raise self.fail(Code.BAD_VALUE, expr, "unsupported symbolic arithmetic")
        result = {"+": lambda: left + right, "-": lambda: left - right,
                  "*": lambda: left * right}[op]()
        if isinstance(result, int) and abs(result) > MAX_INT:
            raise self.fail(Code.LIMIT, expr, "integer overflow: the value is too large")
        return simplify(result) if isinstance(result, Poly) else result
