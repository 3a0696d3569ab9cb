"""Symbolic sizes: integer polynomials in named sizes (``H``, ``W``) with exact floor division.

A spec may leave its input size open (``input image: 3 x H x W``); every spatial size after it is
then an expression such as ``(H + 31)//32``. Expressions are kept in a canonical form so that two
sizes that are equal for every input compare equal, and so that chains of strided layers stay
short: ``floor((floor(x/m) + k)/d) == floor((x + k*m)/(m*d))`` folds nested divisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import total_ordering
from typing import TypeAlias, Union

# A monomial is a sorted tuple of atoms; an atom is a symbol name or a floor division.
Atom: TypeAlias = Union[str, "FloorDiv"]
Monomial: TypeAlias = tuple[Atom, ...]


@total_ordering
@dataclass(frozen=True)
class FloorDiv:
    """``numerator // divisor`` for a polynomial numerator that the divisor does not divide."""

    numerator: Poly
    divisor: int

    def __str__(self) -> str:
        inner = str(self.numerator)
        if len(self.numerator.terms) + (self.numerator.constant != 0) > 1:
            inner = f"({inner})"
        return f"{inner}//{self.divisor}"

    def __lt__(self, other: object) -> bool:
        return _atom_key(self) < _atom_key(other)  # type: ignore[arg-type]


def _atom_key(atom: Atom) -> tuple[int, str]:
    return (0, atom) if isinstance(atom, str) else (1, str(atom))


@dataclass(frozen=True)
class Poly:
    """A polynomial with integer coefficients over atoms, in canonical (sorted, merged) form."""

    terms: tuple[tuple[Monomial, int], ...] = ()
    constant: int = 0

    # construction ---------------------------------------------------------------------------
    @staticmethod
    def symbol(name: str) -> Poly:
        """The polynomial consisting of one named size."""
        return Poly((((name,), 1),), 0)

    @staticmethod
    def _make(coefficients: Mapping[Monomial, int], constant: int) -> Poly:
        terms = tuple(
            sorted(
                ((m, c) for m, c in coefficients.items() if c != 0),
                key=lambda item: [_atom_key(a) for a in item[0]],
            )
        )
        return _fold_constant_into_division(Poly(terms, constant))

    # arithmetic -----------------------------------------------------------------------------
    def __add__(self, other: Dim) -> Poly:
        other = as_poly(other)
        merged = dict(self.terms)
        for monomial, coefficient in other.terms:
            merged[monomial] = merged.get(monomial, 0) + coefficient
        return Poly._make(merged, self.constant + other.constant)

    __radd__ = __add__

    def __neg__(self) -> Poly:
        return Poly._make({m: -c for m, c in self.terms}, -self.constant)

    def __sub__(self, other: Dim) -> Poly:
        return self + (-as_poly(other))

    def __rsub__(self, other: Dim) -> Poly:
        return as_poly(other) - self

    def __mul__(self, other: Dim) -> Poly:
        other = as_poly(other)
        result: dict[Monomial, int] = {}
        left = [*self.terms, ((), self.constant)]
        right = [*other.terms, ((), other.constant)]
        for m1, c1 in left:
            for m2, c2 in right:
                monomial = tuple(sorted((*m1, *m2), key=_atom_key))
                result[monomial] = result.get(monomial, 0) + c1 * c2
        constant = result.pop((), 0)
        return Poly._make(result, constant)

    __rmul__ = __mul__

    def floordiv(self, divisor: int) -> Poly:
        """``self // divisor`` (divisor > 0), exact where every coefficient is divisible."""
        if divisor == 1:
            return self
        if all(c % divisor == 0 for _, c in self.terms) and self.constant % divisor == 0:
            return Poly._make({m: c // divisor for m, c in self.terms}, self.constant // divisor)
        # floor(floor(q/m)/d) == floor(q/(m*d)): keep one division instead of a tower.
        if len(self.terms) == 1 and self.constant == 0:
            (monomial, coefficient), = self.terms
            if coefficient == 1 and len(monomial) == 1 and isinstance(monomial[0], FloorDiv):
                inner = monomial[0]
                return inner.numerator.floordiv(inner.divisor * divisor)
        # Pull whole multiples out: floor((d*a + r)/d) == a + floor(r/d) keeps numerators small.
        return Poly._make({(FloorDiv(self, divisor),): 1}, 0)

    def __floordiv__(self, other: int) -> Poly:
        return self.floordiv(other)

    # inspection -----------------------------------------------------------------------------
    @property
    def is_constant(self) -> bool:
        """Whether no symbol remains."""
        return not self.terms

    def symbols(self) -> set[str]:
        """The names this expression depends on."""
        names: set[str] = set()
        for monomial, _ in self.terms:
            for atom in monomial:
                names |= {atom} if isinstance(atom, str) else atom.numerator.symbols()
        return names

    def substitute(self, bindings: Mapping[str, int]) -> Dim:
        """Replace bound symbols; returns an int when nothing symbolic remains."""
        total: Dim = self.constant
        for monomial, coefficient in self.terms:
            product: Dim = coefficient
            for atom in monomial:
                if isinstance(atom, str):
                    value: Dim = bindings[atom] if atom in bindings else Poly.symbol(atom)
                else:
                    numerator = atom.numerator.substitute(bindings)
                    value = (
                        numerator // atom.divisor
                        if isinstance(numerator, int)
                        else as_poly(numerator).floordiv(atom.divisor)
                    )
                product = product * value
            total = total + product
        return simplify(total)

    def __str__(self) -> str:
        parts: list[str] = []
        for monomial, coefficient in self.terms:
            wrap = len(monomial) > 1 or coefficient not in (1, -1)
            atoms = "*".join(
                f"({a})" if wrap and isinstance(a, FloorDiv) else str(a) for a in monomial
            )
            if coefficient == 1:
                text = atoms
            elif coefficient == -1:
                text = f"-{atoms}"
            else:
                text = f"{coefficient}*{atoms}"
            parts.append(text)
        if self.constant or not parts:
            parts.append(str(self.constant))
        text = parts[0]
        for part in parts[1:]:
            text += f" - {part[1:]}" if part.startswith("-") else f" + {part}"
        return text

    def __repr__(self) -> str:
        return f"Poly({self})"


def _fold_constant_into_division(poly: Poly) -> Poly:
    # floor(q/m) + k == floor((q + k*m)/m): one canonical form for sizes like (H+1)//2 + 3.
    if len(poly.terms) == 1 and poly.constant != 0:
        (monomial, coefficient), = poly.terms
        if coefficient == 1 and len(monomial) == 1 and isinstance(monomial[0], FloorDiv):
            inner = monomial[0]
            numerator = inner.numerator + poly.constant * inner.divisor
            return Poly(((((FloorDiv(numerator, inner.divisor)),), 1),), 0)
    return poly


Dim: TypeAlias = int | Poly


def as_poly(value: Dim) -> Poly:
    """Lift an int to a constant polynomial."""
    return value if isinstance(value, Poly) else Poly((), int(value))


def simplify(value: Dim) -> Dim:
    """An int where the value is constant, else the polynomial."""
    if isinstance(value, Poly) and value.is_constant:
        return value.constant
    return value


def floordiv(value: Dim, divisor: int) -> Dim:
    """Floor division of a size by a positive integer."""
    if isinstance(value, int):
        return value // divisor
    return simplify(value.floordiv(divisor))


def ceildiv(value: Dim, divisor: int) -> Dim:
    """Ceiling division of a size by a positive integer."""
    return floordiv(value + (divisor - 1), divisor)


def dim_str(value: Dim) -> str:
    """How a size reads in messages and JSON."""
    text = str(value)
    # One term needs no parentheses, even when it is a division like (H + 1)//2.
    compound = isinstance(value, Poly) and len(value.terms) + (value.constant != 0) > 1
    return f"({text})" if compound else text


def substitute(value: Dim, bindings: Mapping[str, int]) -> Dim:
    """Bind symbols in a size."""
    return value if isinstance(value, int) else value.substitute(bindings)


def known_positive(value: Dim) -> bool | None:
    """True or False where the sign is known, None for an open symbolic size."""
    if isinstance(value, int):
        return value > 0
    return None
