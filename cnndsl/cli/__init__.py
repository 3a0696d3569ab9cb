"""The command line: ``cnndsl check | fmt | ir | summary | graph | compile | fcn | weights | lsp``.

Exit codes: 0 when everything holds, 1 when a spec has errors or a failed ``expect``, 2 for usage
or I/O errors. Nothing here imports torch unless a command asks for the PyTorch backend. Each
command is one module of this package with ``add_parser(sub)``; nothing below the CLI parses argv.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from cnndsl import __version__
from cnndsl.cli import check, compile, fcn, fmt, graph, ir, lsp, summary, weights
from cnndsl.cli.common import EXIT_OK, EXIT_SPEC, EXIT_USAGE
from cnndsl.compiler import parse_input_sizes

# The order of ``cnndsl --help``.
COMMANDS = (check, fmt, ir, summary, graph, compile, fcn, weights, lsp)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cnndsl`` command."""
    parser = argparse.ArgumentParser(prog="cnndsl", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cnndsl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) and EXIT_USAGE
    if getattr(args, "input", None):
        try:
            parse_input_sizes(args.input)
        except ValueError as error:  # a bad flag is a usage error, not an error in the spec
            sys.stderr.write(f"cnndsl: --input: {error}\n")
            return EXIT_USAGE
    try:
        return int(args.run(args, out or sys.stdout))
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            sys.stderr.write(exit_.code + "\n")
            return EXIT_USAGE
        return int(exit_.code or 0)
    except BrokenPipeError:
        return EXIT_OK


__all__ = ["COMMANDS", "EXIT_OK", "EXIT_SPEC", "EXIT_USAGE", "build_parser", "main"]
