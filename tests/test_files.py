"""Written files appear whole and with the permissions a plain open() would give them."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnndsl.files import STALE_AGE_S, OutputRefused, atomic_write, atomic_write_all


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_gives_ordinary_permissions(tmp_path: Path) -> None:
    target = atomic_write(tmp_path / "model.py", "x = 1\n")
    assert target.read_text() == "x = 1\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["model.py"]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        atomic_write(tmp_path / "model.onnx", object())  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_chunks_are_written_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    atomic_write(target, [b"ab", memoryview(b"cd"), b""])
    assert target.read_bytes() == b"abcd"

    def failing() -> Iterator[bytes]:
        yield b"half"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, failing())
    assert target.read_bytes() == b"abcd"  # the old file, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_files_written_together_replace_their_targets_only_when_all_are_written(
        tmp_path: Path) -> None:
    weights, model = tmp_path / "m.onnx.data", tmp_path / "m.onnx"
    atomic_write_all([(weights, b"old weights"), (model, b"old model")])

    def failing() -> Iterator[bytes]:
        yield b"new"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write_all([(weights, b"new weights"), (model, failing())])
    assert weights.read_bytes() == b"old weights" and model.read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]


def test_a_target_that_is_an_input_is_refused_in_any_spelling(tmp_path: Path) -> None:
    spec = tmp_path / "net.cnn"
    spec.write_text("network n {}\n")
    os.link(spec, tmp_path / "hard.cnn")
    (tmp_path / "soft.cnn").symlink_to(spec)
    for target in (spec, tmp_path / "hard.cnn", tmp_path / "soft.cnn",
                   tmp_path / "." / "net.cnn"):
        with pytest.raises(OutputRefused, match="input of this command"):
            atomic_write(target, "model", inputs=[str(spec)])
    assert spec.read_text() == "network n {}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.cnn", "net.cnn", "soft.cnn"]


def test_a_device_pipe_or_directory_is_never_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(fifo)
    for target in (fifo, tmp_path / "dir", tmp_path / "link"):
        with pytest.raises(OutputRefused, match=r"regular file|directory") as caught:
            atomic_write(target, b"model")
        assert caught.value.filename == str(target) and caught.value.strerror
    assert stat.S_ISFIFO(fifo.stat().st_mode) and (tmp_path / "link").is_symlink()
    with pytest.raises(OutputRefused):
        atomic_write("/dev/null", b"model")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_symlinked_output_is_written_through_its_link(tmp_path: Path) -> None:
    real = tmp_path / "real.onnx"
    real.write_bytes(b"old")
    (tmp_path / "model.onnx").symlink_to(real)
    atomic_write(tmp_path / "model.onnx", b"new")
    assert (tmp_path / "model.onnx").is_symlink() and real.read_bytes() == b"new"


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    return int(child.stdout)


def _temporary(directory: Path, name: str, pid: int, age: float = 0) -> Path:
    path = directory / f".{name}.cnndsl-{pid}-{len(list(directory.iterdir()))}x_y.tmp"
    path.write_bytes(b"half a model")
    if age:
        os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_stale_temporaries_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = _temporary(tmp_path, "m.onnx", _dead_pid())
    old = _temporary(tmp_path, "m.onnx", os.getpid(), age=2 * STALE_AGE_S)
    fresh = _temporary(tmp_path, "m.onnx", os.getpid())
    other = _temporary(tmp_path, "other.onnx", _dead_pid())
    mkstemp_style = tmp_path / ".m.onnx.k2j4h5g6.tmp"  # not recognisably ours: kept
    mkstemp_style.write_bytes(b"?")
    locked = _temporary(tmp_path, "m.onnx", _dead_pid(), age=2 * STALE_AGE_S)
    with open(locked, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        atomic_write(tmp_path / "m.onnx", b"model")
    assert not dead.exists() and not old.exists()
    assert fresh.exists() and other.exists() and locked.exists() and mkstemp_style.exists()
    assert (tmp_path / "m.onnx").read_bytes() == b"model"


_KILLED_WRITER = """
import sys, time
from cnndsl.files import atomic_write

def chunks():
    yield b"half"
    print("writing", flush=True)
    time.sleep(600)
    yield b"never"

atomic_write(sys.argv[1], chunks())
"""


def test_a_write_killed_midway_leaves_a_temporary_the_next_write_removes(
        tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target)],
                              stdout=subprocess.PIPE, text=True, env=env)
    assert writer.stdout is not None
    assert writer.stdout.readline() == "writing\n"  # blocks until the temporary exists
    writer.kill()
    writer.wait()
    leftover = [p.name for p in tmp_path.iterdir()]
    assert len(leftover) == 1 and leftover[0].startswith(".model.onnx.cnndsl-")
    atomic_write(target, b"model")
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_an_interrupted_write_removes_its_temporary(tmp_path: Path) -> None:
    def interrupted() -> Iterator[bytes]:
        yield b"half"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_all([(tmp_path / "a.data", b"weights"), (tmp_path / "a.onnx", interrupted())])
    assert list(tmp_path.iterdir()) == []
