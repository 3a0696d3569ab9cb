"""How a failed statement ends: its exceptions, and the markers that keep later uses silent."""

from __future__ import annotations

from cnndsl.diagnostics import Code, Reporter, Span

FAILED = ""  # the tensor of a statement that failed: later uses stay silent


class Poisoned:
    """The value of a constant whose definition failed: later uses stay silent."""


POISONED = Poisoned()


class Fail(Exception):
    """Ends the current statement after its error has been reported."""


class Limit(Exception):
    """A resource limit was hit: stop elaborating altogether."""


def fail(reporter: Reporter, code: Code, span: Span, message: str, *notes: str) -> Fail:
    """Report an error and return the exception that ends the statement."""
    reporter.error(code, span, message, *notes)
    return Fail()
