"""What a ``check`` covers: files from paths, directories and globs; each network of a file;
files of blocks only checked as libraries.

A library's blocks cannot be given shapes without a call site (their parameters have no
values), so each block is elaborated once in a probe network, on an input of 64 x H x W with
64 for every parameter that has no default, and only the diagnostics that no argument could
change are kept: syntax, imports, unknown layers and parameters, undefined and duplicate or
unused names, missing arguments. Shapes inside a block are checked where a network calls it.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnndsl.compiler import CheckResult, check
from cnndsl.diagnostics import CnnError, Code, Diagnostic, Span
from cnndsl.syntax import ast
from cnndsl.syntax.parser import SourceError, parse, read_source, read_stream
from cnndsl.syntax.sources import redact, shows_text

SUFFIX = ".cnn"
_GLOB_CHARACTERS = set("*?[")
_PROBE = "__cnndsl_library_probe"
_PROBE_VALUE = 64
# What a block's errors can be without knowing its arguments: these never depend on them.
LIBRARY_CODES = frozenset({
    Code.SYNTAX, Code.UNEXPECTED_END, Code.IO, Code.LIMIT, Code.IMPORT_CYCLE,
    Code.UNKNOWN_LAYER, Code.UNKNOWN_PARAMETER, Code.UNDEFINED_NAME, Code.DUPLICATE_NAME,
    Code.UNUSED_NAME, Code.MISSING_ARGUMENT,
})


class PathError(Exception):
    """A path given to ``check`` that names nothing: a usage error, not an error in a spec."""


@dataclass
class Unit:
    """One thing ``check`` reports on: a network of a file, a library, or a file that failed
    before either could be told (it does not parse or cannot be read)."""

    kind: str  # "network" | "library" | "file"
    result: CheckResult
    blocks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the unit has no errors."""
        if self.kind == "network":
            return self.result.ok
        return not any(d.severity == "error" for d in self.result.diagnostics)


def expand_paths(arguments: list[str]) -> list[str]:
    """Files to check: a directory gives its ``*.cnn`` files (recursively, skipping hidden
    directories), a glob its matches, ``-`` standard input; in order, without repeats."""
    files: list[str] = []
    for argument in arguments:
        if argument == "-":
            files.append(argument)
        elif os.path.isdir(argument):
            found = _directory_files(argument)
            if not found:
                raise PathError(f"{argument}: no {SUFFIX} files in this directory")
            files.extend(found)
        elif _GLOB_CHARACTERS & set(argument) and not os.path.exists(argument):
            matches = sorted(glob.glob(argument, recursive=True))
            found = [m for m in matches if os.path.isfile(m)]
            for directory in (m for m in matches if os.path.isdir(m)):
                found.extend(_directory_files(directory))
            if not found:
                raise PathError(f"{argument}: no file matches")
            files.extend(found)
        else:
            files.append(argument)  # a missing file is reported as that file's I/O error
    return list(dict.fromkeys(files))


def _directory_files(directory: str) -> list[str]:
    found: list[str] = []
    for root, directories, names in os.walk(directory):
        directories[:] = sorted(d for d in directories if not d.startswith("."))
        found.extend(os.path.join(root, n) for n in sorted(names) if n.endswith(SUFFIX))
    return found


def read_text(path: str, stdin: Any = None) -> tuple[str | None, CheckResult | None]:
    """A file's text, or the result that reports why it cannot be read."""
    if path == "-":
        return read_stream(stdin.buffer), None
    try:
        return read_source(Path(path)), None
    except SourceError as error:
        message = error.reason if error.code is Code.LIMIT else \
            f"cannot read {path}: {error.reason}"
        return None, CheckResult(path, None, [Diagnostic(error.code, Span(file=path), message)])


def check_units(path: str, options: dict[str, Any], stdin: Any = None) -> list[Unit]:
    """Every network of one file (only ``options['network']`` when given), or its library."""
    text, failure = read_text(path, stdin)
    file = "<stdin>" if path == "-" else path
    if text is None:
        assert failure is not None
        return [Unit("file", failure)]
    try:
        module = parse(text, file)
    except CnnError as error:  # a file that is not a spec (/proc/self/environ) is not quoted
        if not shows_text(file):
            return [Unit("file", CheckResult(file, None, redact(error.diagnostics, file)))]
        return [Unit("file", CheckResult(file, None, error.diagnostics, {file: text}))]
    networks = [i.name for i in module.items if isinstance(i, ast.NetworkDef)]
    if not module.items:  # nothing at all (or only comments): not a library, a mistake
        return [Unit("file", check(text, file=file, **options))]
    if options.get("network") or len(networks) == 1:
        return [Unit("network", check(text, file=file, **options))]
    if networks:
        chosen = {k: v for k, v in options.items() if k != "network"}
        return [Unit("network", check(text, file=file, network=name, **chosen))
                for name in networks]
    return [check_library(text, file, module)]


def check_library(text: str, file: str, module: ast.Module) -> Unit:
    """A file of blocks (and constants, imports) without a network, checked as a library."""
    blocks = [item for item in module.items if isinstance(item, ast.BlockDef)]
    last_line = text.count("\n") + 1
    diagnostics: dict[tuple[Any, ...], Diagnostic] = {}
    sources: dict[str, str] = {file: text}
    for probe in [_probe(block) for block in blocks] or [_probe(None)]:
        result = check(text + "\n" + probe, file=file)
        sources.update(result.sources)
        for diagnostic in result.diagnostics:
            span = diagnostic.span
            if span.file == file and span.line > last_line:
                continue  # the probe's own lines
            if diagnostic.code not in LIBRARY_CODES:
                continue
            key = (span.file, span.line, span.col, diagnostic.code, diagnostic.message)
            diagnostics.setdefault(key, diagnostic)
    sources[file] = text
    ordered = sorted(diagnostics.values(),
                     key=lambda d: (d.span.file != file, d.span.file, d.span.line, d.span.col))
    return Unit("library", CheckResult(file, None, ordered, sources), [b.name for b in blocks])


def _probe(block: ast.BlockDef | None) -> str:
    lines = [f"network {_PROBE} {{", f"  input x: {_PROBE_VALUE} x H x W"]
    if block is None:
        lines.append("  identity")
    else:
        arguments = ", ".join(f"{p.name} = {_PROBE_VALUE}" for p in block.params
                              if p.default is None)
        lines.append(f"  {block.name}({arguments})")
    lines.append("}")
    return "\n".join(lines) + "\n"
