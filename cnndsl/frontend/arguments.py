"""The argument binder: one set of rules for the arguments of layers, composites and blocks.

A call's arguments are matched to a ``Signature``: positional ones in order (a parameter given by
name is skipped), keywords by name, bare flag words (``ceil``, ``bilinear``) to the parameter
they set. Unknown, repeated and missing parameters are diagnostics worded the same for every
kind of callee; each value is then turned into what the callee wants by its parameter's type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cnndsl import layers
from cnndsl.diagnostics import Code, Span, did_you_mean
from cnndsl.frontend.expressions import Expressions
from cnndsl.frontend.failures import Fail, fail
from cnndsl.layers import REQUIRED, ArgumentError, Param, Word
from cnndsl.syntax import ast

_CODES = {"undefined": Code.UNDEFINED_NAME, "value": Code.BAD_VALUE}


@dataclass(frozen=True)
class Deferred:
    """A default written in the spec: evaluated when a call leaves its parameter out."""

    expr: ast.Expr


@dataclass(frozen=True)
class Signature:
    """What a callee accepts: its parameters in order, which are positional, its flag words."""

    word: str
    subject: str  # how messages name the callee: "'conv'", "block 'stage'"
    params: Mapping[str, Param]
    positional: tuple[str, ...] = ()
    flags: Mapping[str, tuple[str, Any]] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    show_usage: bool = False

    def usage(self) -> str:
        """The usage note of a layer word; empty for callees whose definition says it."""
        if not self.show_usage:
            return ""
        params = " ".join(f"{p.upper()}" for p in self.positional)
        keywords = ", ".join(k for k in self.params if k not in self.positional)
        usage = f"usage: {self.word} {params}".rstrip()
        return f"{usage}; keywords: {keywords}" if keywords else usage


def defined(value: Any) -> Any:
    """Any value, but not a bare word: a block argument must be bound to something."""
    if isinstance(value, Word):
        raise ArgumentError(f"'{value}' is not defined", code="undefined")
    return value


def layer_signature(layer: layers.Layer) -> Signature:
    """The signature of a layer word."""
    return Signature(layer.word, f"'{layer.word}'", layer.params, layer.positional, layer.flags,
                     {"pad": "padding"}, show_usage=True)


def block_signature(definition: ast.BlockDef) -> Signature:
    """The signature of a block: every parameter positional, defaults evaluated per call."""
    params = {
        p.name: Param(defined, REQUIRED if p.default is None else Deferred(p.default))
        for p in definition.params
    }
    return Signature(definition.name, f"block '{definition.name}'", params, tuple(params))


def composite_signature(word: str, defaults: Mapping[str, Any]) -> Signature:
    """The signature of a composite: keyword options, each a flag or a positive count."""
    params = {
        name: Param(layers.boolean if isinstance(default, bool) else layers.positive_int,
                    default)
        for name, default in defaults.items()
    }
    return Signature(word, f"'{word}'", params)


class Binder:
    """Binds a call's arguments to a signature, reporting the first misuse of each call."""

    def __init__(self, expressions: Expressions):
        self.expressions = expressions

    def bind(self, signature: Signature, call: ast.Call, env: dict[str, Any],
             defaults_env: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
        """Each parameter's value, from the call or its default (``Deferred`` ones evaluated in
        ``defaults_env()`` plus the parameters before them)."""
        given, flagged = self._match(signature, call, env)
        bound: dict[str, Any] = {}
        scope = defaults_env() if defaults_env is not None else {}
        for name, param in signature.params.items():
            if name in flagged:
                bound[name] = flagged[name]
            elif name in given:
                bound[name] = self._coerce(signature, name, param, *given[name], env)
            elif param.default is REQUIRED:
                raise self._fail(Code.MISSING_ARGUMENT, call.span,
                                 f"{signature.subject} needs '{name}'", signature.usage())
            elif isinstance(param.default, Deferred):
                bound[name] = self.expressions.evaluate(param.default.expr, scope)
            else:
                bound[name] = param.default
            scope[name] = bound[name]
        # In the order the call gave them, then the defaults: blocks record their arguments so.
        order = {name: bound[name] for name in [*given, *flagged] if name in bound}
        return {**order, **bound}

    def _match(self, signature: Signature, call: ast.Call, env: dict[str, Any],
               ) -> tuple[dict[str, tuple[Any, ast.Arg]], dict[str, Any]]:
        """The arguments by parameter: evaluated values, and final values set by flag words."""
        given: dict[str, tuple[Any, ast.Arg]] = {}
        flagged: dict[str, Any] = {}
        positional = list(signature.positional)
        for arg in call.args:
            flag = (arg.name is None and isinstance(arg.value, ast.Name)
                    and arg.value.name in signature.flags and arg.value.name not in env)
            if flag:
                assert isinstance(arg.value, ast.Name)
                target, value = signature.flags[arg.value.name]
            elif arg.name is None:
                if not positional:
                    raise self._too_many(signature, arg)
                target = positional.pop(0)
            else:
                target = signature.aliases.get(arg.name, arg.name)
                if target not in signature.params:
                    raise self._fail(
                        Code.UNKNOWN_PARAMETER, arg.name_span or arg.span,
                        f"{signature.subject} has no parameter '{arg.name}'",
                        did_you_mean(arg.name, signature.params) or signature.usage())
                if target in positional:
                    positional.remove(target)
            if target in given or target in flagged:
                raise self._fail(Code.DUPLICATE_NAME, arg.span,
                                 f"'{target}' is given twice to {signature.subject}")
            if flag:
                flagged[target] = value
            else:
                given[target] = (self.expressions.evaluate(arg.value, env), arg)
        return given, flagged

    def _too_many(self, signature: Signature, arg: ast.Arg) -> Fail:
        count = len(signature.positional)
        kind = "positional argument" if len(signature.params) > count else "argument"
        amount = "no" if count == 0 else str(count)
        return self._fail(Code.TOO_MANY_ARGUMENTS, arg.span,
                          f"{signature.subject} takes {amount} {kind}{'s' if count != 1 else ''}",
                          signature.usage())

    def _coerce(self, signature: Signature, name: str, param: Param, value: Any, arg: ast.Arg,
                env: dict[str, Any]) -> Any:
        try:
            return param.coerce(value)
        except ArgumentError as error:
            note = did_you_mean(value, env) if isinstance(value, Word) else ""
            raise self._fail(_CODES.get(error.code, Code.ARGUMENT_TYPE), arg.value.span,
                             f"{signature.word} {name}: {error.message}", note) from None

    def _fail(self, code: Code, span: Span, message: str, *notes: str) -> Fail:
        return fail(self.expressions.reporter, code, span, message, *notes)
