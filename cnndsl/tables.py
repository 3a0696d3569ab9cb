"""Plain aligned text tables, shared by ``cnndsl check`` and ``cnndsl summary``."""

from __future__ import annotations

from collections.abc import Sequence

from cnndsl import ir


def format_table(rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """Rows as lines indented by two spaces, columns padded; ``right`` aligns numbers."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(right))]
    lines = []
    for row in rows:
        cells = [cell.rjust(width) if align else cell.ljust(width)
                 for cell, width, align in zip(row, widths, right, strict=True)]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def kind_label(node: ir.Node) -> str:
    """How a node's kind reads in a table: ``relu``, ``pool:max``, ``conv``."""
    if isinstance(node, ir.Activation):
        return node.function
    if isinstance(node, ir.Pool | ir.GlobalPool | ir.AdaptivePool):
        return f"{node.kind}:{node.mode}"
    return node.kind  # type: ignore[attr-defined, no-any-return]
