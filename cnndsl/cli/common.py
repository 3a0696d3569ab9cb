"""What every command shares: exit codes, the spec options, and reading and checking a spec."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from cnndsl.compiler import CheckResult, check
from cnndsl.diagnostics import Code, Diagnostic
from cnndsl.reporting import FORMATS, render
from cnndsl.syntax.parser import read_stream

EXIT_OK, EXIT_SPEC, EXIT_USAGE = 0, 1, 2


def parse_set(values: Sequence[str] | None) -> dict[str, Any]:
    """``--set NAME=VALUE`` flags as network parameter overrides (numbers where they parse)."""
    params: dict[str, Any] = {}
    for item in values or ():
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"cnndsl: --set takes NAME=VALUE, got {item!r}")
        try:
            value: Any = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                value = raw
        params[key.strip()] = value
    return params


def add_spec_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that reads a spec: --input, --network, --set."""
    parser.add_argument("--input", metavar="SIZE",
                        help="bind symbolic sizes (H=512,W=512) or set the input (3x512x512)")
    parser.add_argument("--network", metavar="NAME", help="which network of the file")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE",
                        help="override a network parameter, e.g. --set classes=10")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="how diagnostics are reported: text (default), json, sarif "
                        "(SARIF 2.1.0) or github (workflow-command annotations)")


def report(args: argparse.Namespace, diagnostics: Sequence[Diagnostic],
           sources: dict[str, str] | None = None, out: TextIO | None = None) -> None:
    """Report a command's diagnostics: text on stderr, the machine formats on stdout.

    A command that reports is failing, so stdout carries nothing else then; GitHub reads
    workflow commands from stdout.
    """
    format = getattr(args, "format", "text")
    stream = sys.stderr if format == "text" else out or sys.stdout
    stream.write(render(diagnostics, format, sources))


def status(args: argparse.Namespace, out: TextIO) -> TextIO:
    """Where a command's progress lines go: ``out``, or stderr when ``out`` carries a JSON or
    SARIF document that must stay parseable."""
    return sys.stderr if getattr(args, "format", "text") in ("json", "sarif") else out


def spec_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``check`` that --network, --input and --set give."""
    return dict(network=args.network, input=args.input, params=parse_set(args.set))


def check_one(path: str, args: argparse.Namespace) -> CheckResult:
    """Check the spec at ``path`` (``-`` for standard input) with the command's spec options."""
    if path == "-":
        return check(read_stream(sys.stdin.buffer), file="<stdin>", **spec_options(args))
    return check(Path(path), **spec_options(args))


def exit_code(results: Sequence[CheckResult]) -> int:
    """2 when a file could not be read, 1 when a spec has errors, else 0."""
    io_error = any(d.code is Code.IO and d.span.file == r.file for r in results
                   for d in r.diagnostics)
    if io_error:
        return EXIT_USAGE
    return EXIT_OK if all(r.ok for r in results) else EXIT_SPEC


def load_or_report(args: argparse.Namespace,
                   out: TextIO | None = None) -> tuple[CheckResult, int | None]:
    """Check ``args.file``; on errors print them and return the exit code beside the result."""
    result = check_one(args.file, args)
    if not result.ok:
        report(args, result.diagnostics, result.sources, out)
        return result, exit_code([result])
    return result, None
