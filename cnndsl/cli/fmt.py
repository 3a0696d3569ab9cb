"""``cnndsl fmt``: rewrite specs in the canonical layout, or list those that are not in it."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, TextIO

from cnndsl.cli.common import EXIT_OK, EXIT_SPEC, EXIT_USAGE
from cnndsl.diagnostics import CnnError, Code, Diagnostic, Span
from cnndsl.files import atomic_write
from cnndsl.reporting import FORMATS, render
from cnndsl.syntax.format import FormatterBug, format_source
from cnndsl.workspace import PathError, expand_paths, read_text


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Format each file in place (``-``: standard input to standard output), or ``--check``."""
    try:
        paths = expand_paths(args.files)
    except PathError as error:
        sys.stderr.write(f"cnndsl fmt: {error}\n")
        return EXIT_USAGE
    diagnostics: list[Diagnostic] = []
    sources: dict[str, str] = {}
    changed: list[str] = []
    code = EXIT_OK
    for path in paths:
        text, failure = read_text(path, sys.stdin)
        if text is None:
            assert failure is not None
            diagnostics.extend(failure.diagnostics)
            code = EXIT_USAGE
            continue
        name = "<stdin>" if path == "-" else path
        try:
            formatted = format_source(text)
        except CnnError as error:
            diagnostics.extend(_renamed(d, name) for d in error.diagnostics)
            sources[name] = text
            code = max(code, EXIT_SPEC)
            continue
        except FormatterBug as error:
            sys.stderr.write(f"cnndsl fmt: {name}: internal error, file left as it was: "
                             f"{error}\n")
            code = EXIT_USAGE
            continue
        if path == "-" and not args.check:
            out.write(formatted)
            continue
        if formatted == text.removeprefix("\ufeff"):
            continue
        changed.append(name)
        if not args.check:
            atomic_write(path, formatted)
    _report(args, out, diagnostics, sources, changed)
    if args.check and changed:
        code = max(code, EXIT_SPEC)
    return code


def _renamed(diagnostic: Diagnostic, file: str) -> Diagnostic:
    # format_source parses under a placeholder name; report under the file's own.
    span = dataclasses.replace(diagnostic.span, file=file)
    return Diagnostic(diagnostic.code, span, diagnostic.message, diagnostic.severity,
                      diagnostic.notes)


def _report(args: argparse.Namespace, out: TextIO, diagnostics: list[Diagnostic],
            sources: dict[str, str], changed: list[str]) -> None:
    verb = "would reformat" if args.check else "reformatted"
    if args.format == "text":
        if diagnostics:
            sys.stderr.write(render(diagnostics, "text", sources))
        stream = out if args.check else sys.stderr
        for name in changed:
            stream.write(f"{verb} {name}\n")
        return
    # For CI, a file that is not formatted is a warning at its first line.
    unformatted = [Diagnostic(Code.UNFORMATTED, Span(file=name), f"{verb} {name}", "warning")
                   for name in changed] if args.check else []
    out.write(render([*diagnostics, *unformatted], args.format, sources))


def add_parser(sub: Any) -> None:
    """Register ``fmt``."""
    p = sub.add_parser("fmt", help="rewrite specs in the canonical layout")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="files, directories (their *.cnn, recursively) or globs; - for stdin")
    p.add_argument("--check", action="store_true",
                   help="change nothing; list the files that would change and exit 1 if any")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="how problems are reported (text, json, sarif, github)")
    p.set_defaults(run=run)
