"""``cnndsl lsp``: the language server over standard input and output (the ``lsp`` extra)."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from cnndsl.cli.common import EXIT_OK, EXIT_USAGE


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Serve the language server protocol until the client exits."""
    try:
        from cnndsl.lsp.server import serve
    except ImportError as error:  # pygls is an extra
        sys.stderr.write(f"cnndsl lsp: the language server needs pygls ({error}); "
                         "install cnndsl[lsp]\n")
        return EXIT_USAGE
    serve()
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Register ``lsp``."""
    p = sub.add_parser("lsp", help="run the language server (diagnostics, hover, completion) "
                                   "on standard input and output")
    p.set_defaults(run=run)
