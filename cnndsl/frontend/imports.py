"""Imports: read a spec and the files it imports, collecting their definitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnndsl import layers
from cnndsl.diagnostics import CnnError, Code, Reporter
from cnndsl.syntax import ast
from cnndsl.syntax.parser import SourceError, parse, read_source
from cnndsl.syntax.sources import NOT_A_FILE, ImportDenied, ImportPolicy, redact, shows_text

MAX_IMPORT_DEPTH = 32


@dataclass
class Definitions:
    """Everything the files define: blocks, constants and networks, with their sources."""

    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    constants: list[ast.Const] = field(default_factory=list)
    networks: dict[str, ast.NetworkDef] = field(default_factory=dict)
    main_networks: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)


class Loader:
    """How spec files are read and parsed; the language server keeps both in a cache."""

    def read(self, path: Path) -> str:
        """An imported file's text; raises SourceError."""
        return read_source(path)

    def parse(self, text: str, file: str) -> ast.Module:
        """One file's AST; raises CnnError for a syntax error."""
        return parse(text, file)


def load_definitions(text: str, file: str, reporter: Reporter,
                     policy: ImportPolicy | None = None,
                     loader: Loader | None = None) -> Definitions:
    """Parse a file and everything it imports; collect the definitions."""
    definitions = Definitions()
    policy = policy or ImportPolicy.for_spec(file)
    _load_file(text, file, definitions, reporter, stack=[], main=True, policy=policy,
               loader=loader or Loader())
    return definitions


def _load_file(text: str, file: str, definitions: Definitions, reporter: Reporter,
               stack: list[str], main: bool, policy: ImportPolicy, loader: Loader) -> None:
    try:
        module = loader.parse(text, file)
    except CnnError as error:
        # Imports are all *.cnn; a file given directly that is not one may be anything
        # (/proc/self/environ): a syntax error there shows none of its text.
        shown = shows_text(file)
        reporter.diagnostics.extend(error.diagnostics if shown else
                                    redact(error.diagnostics, file))
        if shown:
            definitions.sources[file] = text
        return
    definitions.sources[file] = text
    base = Path(file).parent if file not in NOT_A_FILE else Path.cwd()
    for item in module.items:
        if isinstance(item, ast.Import):
            _load_import(item, base, definitions, reporter, [*stack, file], policy, loader)
        elif isinstance(item, ast.Const):
            definitions.constants.append(item)
        elif isinstance(item, ast.BlockDef | ast.NetworkDef):
            _define(item, definitions, reporter, main)


def _define(item: ast.BlockDef | ast.NetworkDef, definitions: Definitions, reporter: Reporter,
            main: bool) -> None:
    table: dict[str, Any] = (
        definitions.blocks if isinstance(item, ast.BlockDef) else definitions.networks
    )
    if item.name in definitions.blocks or item.name in definitions.networks:
        reporter.error(Code.DUPLICATE_NAME, item.name_span, f"'{item.name}' is defined twice")
        return
    if item.name in layers.LAYERS or item.name in layers.COMPOSITES:
        reporter.error(Code.DUPLICATE_NAME, item.name_span,
                       f"'{item.name}' is a built-in layer and cannot be redefined")
        return
    table[item.name] = item
    if main and isinstance(item, ast.NetworkDef):
        definitions.main_networks.append(item.name)


def _load_import(item: ast.Import, base: Path, definitions: Definitions, reporter: Reporter,
                 stack: list[str], policy: ImportPolicy, loader: Loader) -> None:
    try:
        path = policy.resolve(base, item.path)
    except ImportDenied as error:
        reporter.error(Code.IMPORT_DENIED, item.span, f"cannot import '{item.path}': {error}")
        return
    except (OSError, ValueError, RuntimeError) as error:  # NUL bytes, symlink loops
        reporter.error(Code.IO, item.span, f"cannot import '{item.path}': {error}")
        return
    name = str(path)
    if len(stack) > MAX_IMPORT_DEPTH:
        reporter.error(Code.LIMIT, item.span, f"imports nest deeper than {MAX_IMPORT_DEPTH}")
        return
    if name in stack or any(Path(s).resolve() == path for s in stack if s != "<string>"):
        chain = " -> ".join([*(Path(s).name for s in stack), path.name])
        reporter.error(Code.IMPORT_CYCLE, item.span, f"import cycle: {chain}")
        return
    if name in definitions.sources:
        return  # already loaded through another import
    try:
        text = loader.read(path)
    except SourceError as error:
        reporter.error(error.code, item.span, f"cannot import '{item.path}': {error.reason}")
        return
    _load_file(text, name, definitions, reporter, stack, main=False, policy=policy,
               loader=loader)
