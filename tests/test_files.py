"""Written files appear whole and with the permissions a plain open() would give them."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnndsl.files import atomic_write, atomic_write_all


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
