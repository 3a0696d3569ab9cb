"""Atomic file writes: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

Data = bytes | str | Iterable[bytes | memoryview]


def _default_mode() -> int:
    # mkstemp creates 0600 files; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_temporary(path: Path, data: Data) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    pieces = [data] if isinstance(data, bytes) else data
    directory = path.parent if str(path.parent) else Path(".")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            for piece in pieces:
                stream.write(piece)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, _default_mode())
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return Path(temporary)


def atomic_write_all(files: Iterable[tuple[str | Path, Data]]) -> list[Path]:
    """Write every file completely before any of them replaces its target.

    For files that belong together (a model and its external weights): a failure while writing
    leaves all the old files as they were; the renames come last, in the order given.
    """
    written: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            written.append((Path(path), _write_temporary(Path(path), data)))
        for path, temporary in written:
            os.replace(temporary, path)
    except BaseException:
        for _, temporary in written:
            temporary.unlink(missing_ok=True)
        raise
    return [path for path, _ in written]


def atomic_write(path: str | Path, data: Data) -> Path:
    """Write all of ``data`` (text, bytes or byte chunks) or nothing: no half-written file."""
    return atomic_write_all([(path, data)])[0]
