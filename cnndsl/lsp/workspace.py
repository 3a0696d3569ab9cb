"""The editor's view of the files: open documents, cached reads and parses, one analysis each.

A warm re-check re-reads nothing that has not changed: imported files are kept with their
modification time and size, parses are kept with the text they came from (a changed document is
reparsed only around the edit, see ``incremental``), and an analysis is kept until its document
or one of the files it read changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

from cnndsl.compiler import CheckResult, check_text
from cnndsl.diagnostics import CnnError, Diagnostic, Reporter
from cnndsl.frontend.imports import Definitions, Loader, load_definitions
from cnndsl.lsp.incremental import reparse
from cnndsl.syntax import ast
from cnndsl.syntax.parser import MAX_SOURCE_BYTES, SourceError, parse, read_source


def uri_to_file(uri: str) -> str:
    """The file name a document's spans carry: its absolute path for ``file:`` URIs."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri
    path = unquote(parsed.path)
    if os.name == "nt" and path.startswith("/") and path[2:3] == ":":
        path = path[1:]
    return os.path.normpath(path)


def file_to_uri(file: str) -> str:
    """The URI of a file name from a span (names that are not paths are already URIs)."""
    if "://" in file or file.startswith(("untitled:", "<")):
        return file
    return "file://" + quote(Path(file).resolve().as_posix())


@dataclass
class _Parsed:
    text: str
    module: ast.Module | None
    error: CnnError | None


class CachingLoader(Loader):
    """Reads open documents from memory and other files from disk once per change; keeps parses."""

    def __init__(self, documents: dict[str, str]):
        self.documents = documents  # file name -> text of the open documents
        self.files: dict[str, tuple[int, int, str]] = {}  # path -> (mtime_ns, size, text)
        self.parsed: dict[str, _Parsed] = {}
        self.good: dict[str, tuple[str, ast.Module]] = {}  # the last text that parsed, per file
        self.full_parses = 0  # how many times a whole file was parsed (tests watch the cache)

    def read(self, path: Path) -> str:
        """An open document's text, else the file's, read again only when it changed on disk."""
        name = str(path)
        if name in self.documents:
            return self.documents[name]
        try:
            stat = os.stat(path)
        except OSError:
            return read_source(path)  # raises the SourceError with the reason
        cached = self.files.get(name)
        if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2]
        text = read_source(path)
        self.files[name] = (stat.st_mtime_ns, stat.st_size, text)
        return text

    def parse(self, text: str, file: str) -> ast.Module:
        """The AST of a file's text, from the cache, an incremental reparse or a full parse."""
        cached = self.parsed.get(file)
        if cached is None or cached.text != text:
            cached = self._parse(text, file)
            self.parsed[file] = cached
        if cached.error is not None:
            raise cached.error
        assert cached.module is not None
        return cached.module

    def _parse(self, text: str, file: str) -> _Parsed:
        previous = self.good.get(file)
        if previous is not None and len(text) * 4 <= MAX_SOURCE_BYTES:
            module = reparse(previous[0], previous[1], text.removeprefix("\ufeff"))
            if module is not None:
                self.good[file] = (text, module)
                return _Parsed(text, module, None)
        self.full_parses += 1
        try:
            module = parse(text, file)
        except CnnError as error:
            return _Parsed(text, None, error)
        self.good[file] = (text, module)
        return _Parsed(text, module, None)

    def module(self, file: str) -> ast.Module | None:
        """The last module that parsed for a file (kept through syntax errors)."""
        good = self.good.get(file)
        return good[1] if good else None

    def forget(self, file: str) -> None:
        """Drop what is kept for a file that is no longer open."""
        self.parsed.pop(file, None)
        self.good.pop(file, None)


@dataclass
class Analysis:
    """What checking one document found: its definitions, one result per network, diagnostics."""

    uri: str
    file: str
    text: str
    definitions: Definitions
    results: list[CheckResult] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    module: ast.Module | None = None  # None while the document does not parse
    last_module: ast.Module | None = None  # the last parse that worked, for names while typing
    last_good: Analysis | None = None  # the last analysis of a text that parsed, likewise
    modules: dict[str, ast.Module] = field(default_factory=dict)  # every file read, parsed
    cache: dict[str, object] = field(default_factory=dict)  # indexes built on first use

    @property
    def sources(self) -> dict[str, str]:
        """Every file the analysis read, with the text it read."""
        return self.definitions.sources


def analyze(text: str, uri: str, loader: Loader | None = None) -> Analysis:
    """Check a document: parse and import, then every network it defines (a file of blocks only
    is a library: its definitions are checked, its blocks when a network calls them)."""
    loader = loader or CachingLoader({})
    file = uri_to_file(uri)
    reporter = Reporter()
    definitions = load_definitions(text, file, reporter, loader=loader)
    analysis = Analysis(uri, file, text, definitions)
    for name in definitions.sources:
        try:
            analysis.modules[name] = loader.parse(definitions.sources[name], name)
        except CnnError:
            continue
    analysis.module = analysis.modules.get(file)
    analysis.last_module = analysis.module
    if analysis.module is None and isinstance(loader, CachingLoader):
        analysis.last_module = loader.module(file)
    diagnostics = list(reporter.diagnostics)
    if not reporter.errors:
        for network in definitions.main_networks:
            result = check_text(text, file, network=network, loader=loader,
                                receptive_fields=False)
            analysis.results.append(result)
            diagnostics.extend(result.diagnostics)
    analysis.diagnostics = _unique(diagnostics)
    return analysis


def _unique(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    # A block's warning (an unused parameter) comes once per network that calls it.
    seen: set[tuple[object, ...]] = set()
    kept = []
    for diagnostic in diagnostics:
        key = (diagnostic.code, diagnostic.span, diagnostic.message)
        if key not in seen:
            seen.add(key)
            kept.append(diagnostic)
    return kept


def _names(uri: str) -> set[str]:
    # Imports are resolved through symbolic links, the document's own name is not.
    file = uri_to_file(uri)
    return {file, os.path.realpath(file)} if os.path.isabs(file) else {file}


class Workspace:
    """The open documents and one analysis per document, re-made only when an input changed."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}  # uri -> text
        self.by_file: dict[str, str] = {}  # file name -> text, for the loader
        self.loader = CachingLoader(self.by_file)
        self.analyses: dict[str, Analysis] = {}

    def update(self, uri: str, text: str) -> None:
        """A document was opened or changed."""
        self.texts[uri] = text
        for name in _names(uri):
            self.by_file[name] = text

    def close(self, uri: str) -> None:
        """A document was closed: its file is read from disk again."""
        self.texts.pop(uri, None)
        for name in _names(uri):
            self.by_file.pop(name, None)
            self.loader.forget(name)
        self.analyses.pop(uri, None)

    def analysis(self, uri: str) -> Analysis:
        """The analysis of an open document, made again only if something it read changed."""
        text = self.texts.get(uri)
        if text is None:
            text = read_source(Path(uri_to_file(uri)))
        kept = self.analyses.get(uri)
        if kept is not None and self._unchanged(kept):
            if kept.text == text:
                return kept
            if kept.module is not None and self._same_module(kept, text):
                kept.text = text  # only comments changed: the results stand, with their spans
                kept.definitions.sources[kept.file] = text
                kept.cache.pop(f"lines:{kept.file}", None)
                return kept
        analysis = analyze(text, uri, self.loader)
        if analysis.module is None and kept is not None:
            analysis.last_good = kept if kept.module is not None else kept.last_good
        self.analyses[uri] = analysis
        return analysis

    def _same_module(self, analysis: Analysis, text: str) -> bool:
        try:
            return self.loader.parse(text, analysis.file) is analysis.module
        except CnnError:
            return False

    def _unchanged(self, analysis: Analysis) -> bool:
        for name, text in analysis.sources.items():
            if name == analysis.file:
                continue
            try:
                if self.loader.read(Path(name)) != text:
                    return False
            except SourceError:  # an import that became unreadable: report it
                return False
        return True

    def dependents(self, uri: str) -> list[str]:
        """The open documents other than ``uri`` whose last analysis read its file."""
        names = _names(uri)
        return [other for other, analysis in self.analyses.items()
                if other != uri and names & analysis.sources.keys() and other in self.texts]

    def others(self, uri: str) -> list[Analysis]:
        """The analyses of the other open documents (for shapes and references across files)."""
        return [a for u, a in self.analyses.items() if u != uri and u in self.texts]
