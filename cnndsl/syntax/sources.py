"""Which files a spec may import, and which files' text a diagnostic may show.

A spec checked in CI is written by whoever sent it, so its imports are untrusted paths: an
``import "/proc/self/environ"`` must neither read the file nor print a line of it. The rules:

- an import names a ``.cnn`` file (after following symbolic links), inside the directory tree of
  the spec being checked or of a directory allowed explicitly (``--allow-import DIR``,
  ``allow_imports=`` in the API); anything else is refused before it is opened;
- only regular files are read (``read_source``): a FIFO or a device is refused without blocking;
- a file given directly whose real name does not end in ``.cnn`` is read, but none of its text is
  shown unless it parses as a spec: a syntax error there says where, not what.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cnndsl.diagnostics import Code, Diagnostic

SPEC_SUFFIX = ".cnn"
NOT_A_FILE = ("<string>", "<stdin>")


class ImportDenied(Exception):
    """An import the policy refuses, with the reason for the message."""


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


@dataclass(frozen=True)
class ImportPolicy:
    """The directory trees that imports may read from (real paths)."""

    roots: tuple[Path, ...]

    @classmethod
    def for_spec(cls, file: str, allowed: Iterable[str | Path] = ()) -> ImportPolicy:
        """The spec's own directory tree (the working directory for text) and ``allowed``."""
        base = Path.cwd() if file in NOT_A_FILE else Path(file).parent
        return cls((_real(base), *(_real(directory) for directory in allowed)))

    def resolve(self, base: Path, written: str) -> Path:
        """The real path of ``import "written"`` in a file in ``base``; raises ImportDenied."""
        real = _real(base / written)
        if real.suffix != SPEC_SUFFIX:
            link = " (it is a link to one that does not)" if written.endswith(SPEC_SUFFIX) else ""
            raise ImportDenied(f"only files named *{SPEC_SUFFIX} can be imported{link}")
        if not any(real.is_relative_to(root) for root in self.roots):
            trees = ", ".join(str(root) for root in self.roots)
            raise ImportDenied(f"it is outside the directory tree of the spec ({trees}); "
                               "allow its directory with --allow-import DIR")
        return real


def shows_text(file: str) -> bool:
    """Whether diagnostics may quote ``file``'s text before it has parsed as a spec."""
    return file in NOT_A_FILE or _real(file).suffix == SPEC_SUFFIX


def redact(diagnostics: Iterable[Diagnostic], file: str) -> list[Diagnostic]:
    """Syntax errors in a file that is not a spec, keeping where they are and not what."""
    note = (f"{file} is not named *{SPEC_SUFFIX} (links followed) and did not parse as a "
            "spec, so none of its text is shown")
    hidden = []
    for diagnostic in diagnostics:
        if diagnostic.span.file == file and diagnostic.code in (Code.SYNTAX,
                                                                Code.UNEXPECTED_END):
            diagnostic = Diagnostic(diagnostic.code, diagnostic.span,
                                    "not a cnndsl spec: syntax error here",
                                    diagnostic.severity, (note,))
        hidden.append(diagnostic)
    return hidden
