"""``cnndsl ir``: the checked IR, or its JSON Schema, as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from cnndsl import ir
from cnndsl.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    add_spec_options,
    check_one,
    exit_code,
    report,
)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Print the IR (or its JSON Schema) as JSON."""
    if args.schema:
        out.write(json.dumps(ir.json_schema(), indent=2) + "\n")
        return EXIT_OK
    if not args.file:
        sys.stderr.write("cnndsl ir: give a FILE or --schema\n")
        return EXIT_USAGE
    result = check_one(args.file, args)
    if result.network is None:
        report(args, result.diagnostics, result.sources, out)
        return exit_code([result])
    out.write(ir.to_json(result.network, indent=2) + "\n")
    return exit_code([result])


def add_parser(sub: Any) -> None:
    """Register ``ir``."""
    p = sub.add_parser("ir", help="print the checked IR as JSON")
    p.add_argument("file", nargs="?", metavar="FILE")
    p.add_argument("--schema", action="store_true", help="print the IR's JSON Schema")
    add_spec_options(p)
    p.set_defaults(run=run)
