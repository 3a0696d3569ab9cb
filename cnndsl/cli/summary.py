"""``cnndsl summary``: per-layer parameters, MACs and memory, totals and the budget planner."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from cnndsl.analysis.summary import Summary, summary
from cnndsl.cli.common import EXIT_OK, EXIT_USAGE, add_spec_options, load_or_report


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _rich_table(result: Summary, out: TextIO, depth: int | None = None) -> bool:
    """Print with rich when it is installed and ``out`` is a terminal; False otherwise."""
    if not (hasattr(out, "isatty") and out.isatty()):
        return False
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        return False
    table = Table(title=result.heading(), title_justify="left")
    header, *rows = result.rows(depth)
    for index, name in enumerate(header):
        longest = max(len(row[index]) for row in [header, *rows])
        table.add_column(name, justify="right" if index >= 3 else "left", no_wrap=True,
                         min_width=longest)
    for row in rows:
        table.add_row(*row)
    console = Console(file=out)
    console.print(table)
    for line in result.totals_lines():
        console.print("  " + line, highlight=False)
    return True


def run(args: argparse.Namespace, out: TextIO) -> int:
    """The table (or ``--json``), with ``--budget`` the largest batches."""
    checked, code = load_or_report(args, out)
    if code is not None:
        return code
    assert checked.network is not None
    try:
        result = summary(checked.network, batch=args.batch, dtype=args.dtype,
                         optimizer=args.optimizer, budget=args.budget)
    except ValueError as error:
        sys.stderr.write(f"cnndsl summary: {error}\n")
        return EXIT_USAGE
    if args.json or args.format == "json":
        out.write(json.dumps(result.to_json(), indent=2) + "\n")
    elif not _rich_table(result, out, args.depth):
        out.write(result.text(args.depth))
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``summary``."""
    p = sub.add_parser("summary", help="parameters, MACs and memory per layer")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--batch", type=_positive, metavar="B",
                   help="batch size: shapes show it and memory is for it (default: one image, N)")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "fp16", "bf16", "mixed"))
    p.add_argument("--optimizer", default="sgd",
                   choices=("sgd", "momentum", "adam", "adamw"))
    p.add_argument("--budget", metavar="BYTES", help="largest batch that fits, e.g. 16GiB")
    p.add_argument("--depth", type=_positive, metavar="D",
                   help="fold the layers of blocks deeper than D path parts into subtotals")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    add_spec_options(p)
    p.set_defaults(run=run)
