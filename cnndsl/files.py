"""Safe file writes: whole or not at all, never over an input or a device, no temporary left.

Each file is written to a temporary beside its target, then renamed over it. A temporary is named
``.NAME.cnndsl-PID-RANDOM.tmp`` and holds an exclusive ``flock`` while its writer lives, so a
later write of the same target recognises one that a killed run left behind (the lock is free, and
its writer is dead or it is older than an hour) and removes it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

Data = bytes | str | Iterable[bytes | memoryview]

STALE_AGE_S = 3600  # a free temporary whose writer's pid was reused is removed past this age
_MARK = "cnndsl"

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locks, stale files are judged by pid only
    fcntl = None  # type: ignore[assignment]


class OutputRefused(OSError):
    """A target that cnndsl will not write: an input of the same command, or not a regular file."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(errno.EPERM, reason, str(path))


def _default_mode() -> int:
    # mkstemp creates 0600 files; give the result the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _identity(path: str | Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def check_target(path: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """The real path to write for ``path``; raises OutputRefused for an input or a non-file.

    Symbolic links are followed (like ``open``), so a linked output keeps its link; the target's
    identity (device and inode) is compared with each input's, so a hard link or another spelling
    of an input is refused too.
    """
    real = Path(os.path.realpath(path))
    try:
        info = os.stat(real)
    except FileNotFoundError:
        return real
    except OSError:
        return real  # let the write itself report what is wrong
    if stat.S_ISDIR(info.st_mode):
        raise OutputRefused(path, "it is a directory")
    if not stat.S_ISREG(info.st_mode):
        raise OutputRefused(path, "it is not a regular file (a device, pipe or socket); "
                                  "cnndsl writes only regular files")
    identity = (info.st_dev, info.st_ino)
    for source in inputs:
        if _identity(source) == identity:
            raise OutputRefused(path, f"it is an input of this command ({source})")
    return real


def _temporary_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.{_MARK}-(\d+)-[A-Za-z0-9_]+\.tmp")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: a process of another user has that pid
        return True
    return True


def _lock(handle: int, block: bool) -> bool:
    if fcntl is None:
        return True
    flags = fcntl.LOCK_EX if block else fcntl.LOCK_EX | fcntl.LOCK_NB
    try:
        fcntl.flock(handle, flags)
    except OSError:
        return False
    return True


def _remove_if_stale(directory: Path, entry: str, pid: int) -> bool:
    path = directory / entry
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            return False
        if not _lock(handle, block=False):
            return False  # its writer holds the lock: still being written
        old = time.time() - info.st_mtime > STALE_AGE_S
        if _alive(pid) and not old:
            return False  # between its creation and its lock, or our own
        if _identity(path) != (info.st_dev, info.st_ino):
            return False  # replaced since it was opened
        path.unlink()
        return True
    except OSError:
        return False
    finally:
        os.close(handle)


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporaries that killed writes of ``path`` left beside it; returns them."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    pattern = _temporary_pattern(path.name)
    removed = []
    try:
        entries = [entry.name for entry in os.scandir(directory)]
    except OSError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry)
        if match and _remove_if_stale(directory, entry, int(match.group(1))):
            removed.append(directory / entry)
    return removed


class _Temporary:
    """A locked temporary file beside its target, open until it is renamed or removed."""

    def __init__(self, target: Path):
        directory = target.parent if str(target.parent) else Path(".")
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.{_MARK}-{os.getpid()}-",
                                        suffix=".tmp", dir=directory)
        self.path = Path(name)
        self.target = target
        _lock(handle, block=True)
        self.stream: BinaryIO = os.fdopen(handle, "wb")

    def write(self, data: Data) -> None:
        """Write all of ``data`` and make it durable."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        pieces = [data] if isinstance(data, bytes) else data
        for piece in pieces:
            self.stream.write(piece)
        self.stream.flush()
        os.fsync(self.stream.fileno())
        os.chmod(self.path, _default_mode())

    def commit(self) -> None:
        """Rename over the target (the lock goes with the closed file)."""
        os.replace(self.path, self.target)
        self.stream.close()

    def discard(self) -> None:
        """Remove the temporary; safe to call twice."""
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        self.stream.close()


@contextlib.contextmanager
def _temporaries() -> Iterator[list[_Temporary]]:
    made: list[_Temporary] = []
    try:
        yield made
    except BaseException:  # Ctrl-C and SIGTERM too: no temporary outlives a failed write
        for temporary in made:
            temporary.discard()
        raise
    for temporary in made:
        temporary.stream.close()


def atomic_write_all(files: Iterable[tuple[str | Path, Data]], *,
                     inputs: Iterable[str | Path] = ()) -> list[Path]:
    """Write every file completely before any of them replaces its target.

    For files that belong together (a model and its external weights): a failure while writing
    leaves all the old files as they were; the renames come last, in the order given. A target
    that is one of ``inputs`` or not a regular file raises OutputRefused before anything is
    written.
    """
    inputs = list(inputs)
    items = [(Path(path), check_target(path, inputs), data) for path, data in files]
    with _temporaries() as made:
        for _, real, data in items:
            remove_stale_temporaries(real)
            made.append(_Temporary(real))
            made[-1].write(data)
        for temporary in made:
            temporary.commit()
    return [path for path, _, _ in items]


def atomic_write(path: str | Path, data: Data, *, inputs: Iterable[str | Path] = ()) -> Path:
    """Write all of ``data`` (text, bytes or byte chunks) or nothing: no half-written file."""
    return atomic_write_all([(path, data)], inputs=inputs)[0]
