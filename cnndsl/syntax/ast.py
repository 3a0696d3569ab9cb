"""The surface AST: what the user wrote, with positions, before any meaning is given to it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from cnndsl.diagnostics import Span

# Expressions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """An integer or float literal."""

    value: int | float
    span: Span


@dataclass(frozen=True)
class Name:
    """A reference to a constant, parameter, tensor or bare word such as ``same``."""

    name: str
    span: Span


@dataclass(frozen=True)
class Str:
    """A string literal."""

    value: str
    span: Span


@dataclass(frozen=True)
class Size:
    """A literal like ``3x3`` (a kernel) or ``3x224x224``."""

    dims: tuple[int, ...]
    span: Span


@dataclass(frozen=True)
class Scale:
    """A literal like ``2x`` (an upsampling factor)."""

    value: float
    span: Span


@dataclass(frozen=True)
class Tuple:
    """A parenthesised list ``(1, 7)``."""

    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class BinOp:
    """Integer arithmetic: ``+ - * / // %``; ``/`` must divide exactly."""

    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class Neg:
    """Unary minus."""

    operand: Expr
    span: Span


@dataclass(frozen=True)
class Quantity:
    """A number with a unit: ``16GiB``, ``4.1G``."""

    value: float
    unit: str
    span: Span


@dataclass(frozen=True)
class Splat:
    """``m.*``: the outputs of every repeat instance of label ``m``, in order."""

    name: str
    span: Span


@dataclass(frozen=True)
class Function:
    """A function call in an expression: ``max(16, c // 4)``, ``make_divisible(v, 8)``."""

    name: str
    args: tuple[Arg, ...]
    span: Span
    name_span: Span


Expr: TypeAlias = (Number | Name | Str | Size | Scale | Tuple | BinOp | Neg | Quantity | Splat
                   | Function)

# Layer calls ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arg:
    """One argument: positional when ``name`` is None; ``/2`` arrives as ``stride``, ``pad`` too."""

    name: str | None
    value: Expr
    span: Span
    name_span: Span | None = None


@dataclass(frozen=True)
class Call:
    """A layer, block or composite: ``conv 64 3x3 /2``, ``bottleneck(64)``, ``residual {...}``."""

    name: str
    args: tuple[Arg, ...]
    span: Span
    name_span: Span
    body: Body | None = None
    shortcut: Body | None = None
    repeat: Expr | None = None


@dataclass(frozen=True)
class Chain:
    """Calls joined by ``->``."""

    calls: tuple[Call, ...]
    span: Span


# Statements ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainStatement:
    """``[label:] chain``: continues from the current tensor unless its first call names one.

    A label is a name or a dotted path; ``numbered`` (``label[]:``) numbers the chain's layers.
    """

    label: str | None
    chain: Chain
    span: Span
    label_span: Span | None = None
    numbered: bool = False


@dataclass(frozen=True)
class Input:
    """``input image: 3 x 224 x 224``."""

    name: str
    dims: tuple[Expr, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Output:
    """``output a, b``: the network's named outputs."""

    names: tuple[Name, ...]
    span: Span


@dataclass(frozen=True)
class Const:
    """``const width = 64``."""

    name: str
    value: Expr
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Expect:
    """``expect params == 25_557_032``; the subject is words plus optional call arguments."""

    subject: tuple[str, ...]
    args: tuple[Arg, ...] | None
    op: str
    value: tuple[Expr, ...]
    span: Span
    subject_span: Span


Statement: TypeAlias = ChainStatement | Input | Output | Const | Expect


@dataclass(frozen=True)
class Body:
    """A braced list of statements; ``bars`` tells whether ``|`` separated any of them."""

    statements: tuple[Statement, ...]
    span: Span
    bars: bool = False


@dataclass(frozen=True)
class Param:
    """A block or network parameter with an optional default."""

    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    """``block name(params) { body }``: a reusable, parameterised piece of network."""

    name: str
    params: tuple[Param, ...]
    body: Body
    span: Span
    name_span: Span


@dataclass(frozen=True)
class NetworkDef:
    """``network name(params) { body }``: the thing that is compiled."""

    name: str
    params: tuple[Param, ...]
    body: Body
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Import:
    """``import "blocks.cnn"``."""

    path: str
    span: Span


TopLevel: TypeAlias = Import | Const | BlockDef | NetworkDef


@dataclass
class Module:
    """One parsed file."""

    file: str
    items: list[TopLevel] = field(default_factory=list)
