"""One call from spec text to a network: load the files, choose the network, elaborate it."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cnndsl import ir
from cnndsl.diagnostics import CnnError, Code, Diagnostic, Reporter, Span, did_you_mean
from cnndsl.frontend.imports import Definitions, Loader, load_definitions
from cnndsl.frontend.network import network as elaborate_network
from cnndsl.frontend.statements import Elaborator
from cnndsl.syntax import ast
from cnndsl.syntax.sources import ImportPolicy

Result = tuple[ir.Network, list[Diagnostic], list[ast.Expect], dict[str, str]]


def elaborate(text: str, file: str = "<string>", *, network: str | None = None,
              sizes: dict[str, int] | None = None, arguments: dict[str, Any] | None = None,
              input_override: tuple[int, ...] | None = None,
              allow_imports: Sequence[str | Path] = (),
              loader: Loader | None = None) -> Result:
    """Parse and elaborate; returns the network, warnings, its expects and the sources read.

    Imports may read ``.cnn`` files in the spec's directory tree and in ``allow_imports``.
    """
    # Parsing and elaboration allocate many small objects and free almost none: the cyclic
    # collector's full passes over the growing heap would make checking superlinear in size.
    collecting = gc.isenabled()
    gc.disable()
    try:
        reporter = Reporter()
        definitions = load_definitions(text, file, reporter,
                                       ImportPolicy.for_spec(file, allow_imports), loader)
        try:
            return _elaborate(definitions, reporter, file, network, sizes, arguments,
                              input_override)
        except CnnError as error:
            error.sources = {**definitions.sources, **error.sources}
            raise
    finally:
        if collecting:
            gc.enable()


def _elaborate(definitions: Definitions, reporter: Reporter, file: str, network: str | None,
               sizes: dict[str, int] | None, arguments: dict[str, Any] | None,
               input_override: tuple[int, ...] | None) -> Result:
    reporter.raise_if_errors()
    chosen = _choose_network(definitions, network, file, reporter)
    reporter.raise_if_errors()
    assert chosen is not None
    elaborator = Elaborator(definitions, reporter, sizes, arguments, input_override)
    definition = definitions.networks[chosen]
    try:
        result = elaborate_network(elaborator, definition)
    except RecursionError:
        # The parser bounds nesting; this guards callers that start with a deep stack.
        reporter.error(Code.LIMIT, definition.name_span, "the network nests too deeply")
        raise CnnError(reporter.diagnostics) from None
    if reporter.errors:
        raise CnnError(reporter.diagnostics)
    expects = result.__dict__.pop("_expects", [])
    return result, reporter.diagnostics, expects, definitions.sources


def _choose_network(definitions: Definitions, name: str | None, file: str,
                    reporter: Reporter) -> str | None:
    if name is not None:
        if name not in definitions.networks:
            reporter.error(Code.NO_NETWORK, Span(file=file), f"no network named '{name}'",
                           did_you_mean(name, definitions.networks))
            return None
        return name
    if len(definitions.main_networks) == 1:
        return definitions.main_networks[0]
    if not definitions.main_networks:
        reporter.error(Code.NO_NETWORK, Span(file=file), "the file defines no network",
                       "a file of blocks is meant to be imported by one that does")
        return None
    listed = ", ".join(definitions.main_networks)
    reporter.error(Code.NO_NETWORK, Span(file=file),
                   f"the file defines several networks ({listed}); choose one with --network")
    return None
