"""The one report of a weights load: counts, the first few of each kind, a "did you mean".

Rendered as a single diagnostic (``weights`` code) whose notes are at most :data:`SHOWN`
tensors per kind, so that a wrong checkpoint costs a screenful at most, never a line per tensor:

    spec.cnn:17:3: warning: weights from r.pt do not fit network resnet50: 318 of 320 tensors
        loaded (318 by name); 2 missing, 2 unexpected, 0 mismatched [weights]
      note: missing (2): fc.weight (10, 512), fc.bias (10,)
      note: unexpected (2): head.weight (10, 512), head.bias (10,)
      note: did you mean --rename head.=fc.?
      note: the missing tensors keep their seeded initialisation; --strict makes this an error
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cnndsl.diagnostics import Code, Diagnostic, Span

SHOWN = 3
Shape = tuple[int, ...]


def _shape(shape: Shape) -> str:
    return f"({shape[0]},)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"


def _listed(title: str, items: Sequence[str], total: int) -> str:
    more = f", ... ({total - len(items)} more)" if total > len(items) else ""
    return f"{title} ({total}): {', '.join(items)}{more}"


@dataclass(frozen=True)
class Report:
    """What a weights load matched, and what it did not."""

    source: str
    network: str
    by: str
    how: str
    matched: int
    reshaped: int = 0
    missing: list[tuple[str, Shape]] = field(default_factory=list)
    unexpected: list[tuple[str, Shape]] = field(default_factory=list)
    # (target key, source key, source shape, target shape)
    mismatched: list[tuple[str, str, Shape, Shape]] = field(default_factory=list)
    hint: tuple[str, ...] = ()  # OLD=NEW rules that would make more keys match
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every tensor of both sides paired."""
        return not (self.missing or self.unexpected or self.mismatched)

    @property
    def total(self) -> int:
        """The network's tensors (batch-norm counters aside)."""
        return self.matched + len(self.missing) + len(self.mismatched)

    def summary(self) -> str:
        """One line: how many tensors loaded, and how."""
        how = f" ({self.how})" if self.how else ""
        reshaped = f", {self.reshaped} reshaped" if self.reshaped else ""
        head = f"weights from {self.source}: {self.matched} of {self.total} tensors loaded"
        if self.ok:
            return f"{head}{how}{reshaped}"
        return (f"weights from {self.source} do not fit network {self.network}: "
                f"{self.matched} of {self.total} tensors loaded{how}{reshaped}; "
                f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
                f"{len(self.mismatched)} mismatched")

    def details(self, strict: bool) -> list[str]:
        """The notes under the summary: the first few of each kind, hints, consequences."""
        lines = []
        if self.mismatched:
            shown = [f"{target}: checkpoint {source} {_shape(theirs)}, network {_shape(ours)}"
                     if source != target else
                     f"{target}: checkpoint {_shape(theirs)}, network {_shape(ours)}"
                     for target, source, theirs, ours in self.mismatched[:SHOWN]]
            lines.append(_listed("mismatched", shown, len(self.mismatched)))
        for title, items in (("missing", self.missing), ("unexpected", self.unexpected)):
            if items:
                shown = [f"{key} {_shape(shape)}" for key, shape in items[:SHOWN]]
                lines.append(_listed(title, shown, len(items)))
        if self.hint:
            lines.append(f"did you mean {' '.join(f'--rename {r}' for r in self.hint)}?")
        lines += self.notes[:3]
        if not self.ok and not strict and (self.missing or self.mismatched):
            lines.append("the tensors not loaded keep their seeded initialisation; "
                         "--strict makes this an error")
        return lines

    def diagnostic(self, span: Span | None = None, *, strict: bool = False) -> Diagnostic:
        """The report as one diagnostic: an error under ``strict``, else a warning."""
        return Diagnostic(Code.WEIGHTS, span or Span(file=self.source), self.summary(),
                          "error" if strict else "warning", tuple(self.details(strict)))
