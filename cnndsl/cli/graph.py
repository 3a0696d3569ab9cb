"""``cnndsl graph``: a picture of the network as DOT text, SVG (Graphviz) or an HTML report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from cnndsl.cli.common import EXIT_OK, EXIT_USAGE, add_spec_options, load_or_report
from cnndsl.files import atomic_write

FORMATS = ("dot", "svg", "html")


def _format(args: argparse.Namespace) -> str | None:
    if args.to:
        return str(args.to)
    suffix = Path(args.output).suffix.lower().lstrip(".") if args.output else ""
    return suffix if suffix in FORMATS else None


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Write the picture to ``-o`` (its suffix picks the format) or DOT text to stdout."""
    kind = _format(args) if args.output else (args.to or "dot")
    if kind is None:
        sys.stderr.write(f"cnndsl graph: cannot tell the format of {args.output}; name it .dot, "
                         ".svg or .html, or give --to\n")
        return EXIT_USAGE
    checked, code = load_or_report(args)
    if code is not None:
        return code
    assert checked.network is not None
    from cnndsl.render import dot, view

    try:
        picture = view.build(checked.network, with_timeline=kind == "html", batch=args.batch)
    except ValueError as error:  # symbolic sizes: the figures need concrete ones
        sys.stderr.write(f"cnndsl graph: {error}\n")
        return EXIT_USAGE
    if kind == "html":
        from cnndsl.render.html import to_html

        text = to_html(picture)
    else:
        text = dot.to_dot(picture)
        if kind == "svg":
            from cnndsl.render.svg import GraphvizMissing, to_svg

            try:
                text = to_svg(text)
            except GraphvizMissing as error:
                sys.stderr.write(f"cnndsl graph: {error}\n")
                return EXIT_USAGE
            except (RuntimeError, OSError) as error:
                sys.stderr.write(f"cnndsl graph: {error}\n")
                return EXIT_USAGE
    if not args.output:
        out.write(text)
        return EXIT_OK
    try:
        atomic_write(Path(args.output), text)
    except OSError as error:
        sys.stderr.write(f"cnndsl: cannot write {args.output}: {error.strerror}\n")
        return EXIT_USAGE
    out.write(f"wrote {args.output} ({checked.network.name}, {len(picture.nodes)} nodes, {kind})\n")
    return EXIT_OK


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def add_parser(sub: Any) -> None:
    """Register ``graph``."""
    p = sub.add_parser("graph", help="draw the network: DOT, SVG (Graphviz) or an HTML report")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", metavar="PATH",
                   help="out.dot, out.svg or out.html (default: DOT text on stdout)")
    p.add_argument("--to", choices=FORMATS,
                   help="the picture format (overrides the output's suffix)")
    p.add_argument("--batch", type=_positive, default=1,
                   help="batch of the HTML report's memory figures (default 1)")
    add_spec_options(p)
    p.set_defaults(run=run)
