"""SVG through Graphviz's ``dot`` program, when it is installed."""

from __future__ import annotations

import shutil
import subprocess

INSTALL_HINT = (
    "SVG needs Graphviz's 'dot' program, which is not installed: install it with "
    "'apt-get install graphviz' (Debian, Ubuntu), 'brew install graphviz' (macOS) or "
    "'conda install graphviz', or write -o graph.dot (plain DOT text) or -o graph.html "
    "(a self-contained report) instead"
)


class GraphvizMissing(RuntimeError):
    """``dot`` is not on the PATH."""


def to_svg(dot_text: str, program: str = "dot", timeout: float = 120.0) -> str:
    """Lay out DOT text with Graphviz and return the SVG; GraphvizMissing without it."""
    executable = shutil.which(program)
    if executable is None:
        raise GraphvizMissing(INSTALL_HINT)
    done = subprocess.run([executable, "-Tsvg"], input=dot_text, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz failed: {done.stderr.strip()[:500]}")
    return done.stdout


__all__ = ["INSTALL_HINT", "GraphvizMissing", "to_svg"]
