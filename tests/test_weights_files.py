"""Checkpoint files: safetensors parsed without the package, npz, .pt containers through torch."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnndsl.diagnostics import CnnError, Code
from cnndsl.weights import read_checkpoint, read_safetensors, write_checkpoint

ROOT = Path(__file__).resolve().parents[1]
STATE = {"features.0.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
         "features.10.weight": np.ones((2,), np.float16),
         "features.2.bias": np.full((3,), -1.5, np.float64),
         "bn.num_batches_tracked": np.array(7, np.int64)}


def test_safetensors_round_trip_keeps_order_and_reads_the_packages_files(tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    ours = tmp_path / "ours.safetensors"
    write_checkpoint(STATE, ours)
    checkpoint = read_checkpoint(ours)
    assert list(checkpoint.tensors) == list(STATE) and checkpoint.ordered
    for key, value in STATE.items():
        assert checkpoint.tensors[key].dtype == value.dtype
        assert np.array_equal(checkpoint.tensors[key], value)
    assert all(np.array_equal(load_file(str(ours))[k], v) for k, v in STATE.items())
    theirs = tmp_path / "theirs.safetensors"
    save_file(STATE, str(theirs))
    checkpoint = read_checkpoint(theirs)
    assert not checkpoint.ordered  # the package sorts keys and records no order
    assert all(np.array_equal(checkpoint.tensors[k], v) for k, v in STATE.items())


def _safetensors(path: Path, header: dict[str, object], data: bytes) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


def test_bfloat16_is_widened_to_float32(tmp_path: Path) -> None:
    values = np.array([1.0, -2.5, 3.140625], np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2").tobytes()
    path = _safetensors(tmp_path / "b.safetensors",
                        {"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}, bits)
    arrays, _ = read_safetensors(path)
    assert arrays["w"].dtype == np.float32 and np.array_equal(arrays["w"], values)


@pytest.mark.parametrize(("header", "data", "message"), [
    ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, "do not fit"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}}, b"\0" * 16, "do not fit"),
    ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "malformed"),
    ({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8, "dtype C64"),
    ({"w": "tensor"}, b"", "malformed"),
])
def test_a_malformed_safetensors_file_is_an_io_error(tmp_path: Path, header: dict[str, object],
                                                     data: bytes, message: str) -> None:
    path = _safetensors(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(CnnError, match=message) as caught:
        read_checkpoint(path)
    assert caught.value.diagnostics[0].code is Code.IO


def test_unreadable_files_are_io_errors(tmp_path: Path) -> None:
    (tmp_path / "short.safetensors").write_bytes(b"\1\2")
    (tmp_path / "huge.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{}")
    (tmp_path / "w.h5").write_bytes(b"")
    for name, message in (("short.safetensors", "shorter than"), ("huge.safetensors", "header of"),
                          ("missing.npz", "No such file"), ("w.h5", "is not .safetensors")):
        with pytest.raises(CnnError, match=message) as caught:
            read_checkpoint(tmp_path / name)
        assert caught.value.diagnostics[0].code is Code.IO


def test_npz_keeps_the_order(tmp_path: Path) -> None:
    write_checkpoint(STATE, tmp_path / "w.npz")
    checkpoint = read_checkpoint(tmp_path / "w.npz")
    assert list(checkpoint.tensors) == list(STATE) and checkpoint.ordered
    with pytest.raises(ValueError, match=r"give a \.safetensors"):
        write_checkpoint(STATE, tmp_path / "w.h5")


def test_a_pt_file_without_torch_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "w.pt").write_bytes(b"PK")
    code = ("import sys; sys.modules['torch'] = None\n"
            "from cnndsl.weights import read_checkpoint\n"
            "from cnndsl.diagnostics import CnnError, render_all\n"
            "try:\n    read_checkpoint(sys.argv[1])\n"
            "except CnnError as e:\n    print(render_all(e.diagnostics))\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "w.pt")], cwd=ROOT,
                            capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    (line,) = result.stdout.splitlines()
    assert "needs PyTorch (install cnndsl[torch]), or use .safetensors / .npz [io]" in line


# .pt containers (torch) -----------------------------------------------------------------------

torch = pytest.importorskip("torch")


def tensors() -> dict[str, object]:
    return {"conv.weight": torch.randn(4, 3, 3, 3), "bn.running_mean": torch.randn(4),
            "bn.num_batches_tracked": torch.tensor(3)}


@pytest.mark.parametrize(("container", "entry"), [
    (lambda s: s, ""),
    (lambda s: {"state_dict": s, "epoch": 3, "optimizer": {"lr": 0.1}}, "['state_dict']"),
    (lambda s: {"model": s, "hyper_parameters": {"lr": 0.1}}, "['model']"),
    (lambda s: {"model": None, "ema": s, "updates": 10}, "['ema']"),
    (lambda s: {"checkpoint": 1, "model_ema": s}, "['model_ema']"),
    (lambda s: {"model": {"state_dict": s}}, "['model']['state_dict']"),
])
def test_state_dicts_are_found_in_the_usual_containers(tmp_path: Path, container: object,
                                                       entry: str) -> None:
    state = tensors()
    torch.save(container(state), tmp_path / "c.pt")  # type: ignore[operator]
    checkpoint = read_checkpoint(tmp_path / "c.pt")
    assert checkpoint.entry == entry and list(checkpoint.tensors) == list(state)
    assert np.array_equal(checkpoint.tensors["conv.weight"], state["conv.weight"].numpy())


def test_an_ultralytics_checkpoint_of_plain_data_is_read_in_full_precision(
        tmp_path: Path) -> None:
    # What Ultralytics saves, but with the model's state dict instead of the model object.
    state = {f"model.{i}.{leaf}": torch.randn(8).half() for i in range(3)
             for leaf in ("conv.weight", "bn.weight")}
    torch.save({"date": "2024-01-01", "version": "8.1.0", "epoch": -1, "best_fitness": None,
                "model": state, "ema": None, "updates": 0, "optimizer": None,
                "train_args": {"imgsz": 64, "model": "yolov8n.yaml"}}, tmp_path / "best.pt")
    checkpoint = read_checkpoint(tmp_path / "best.pt")
    assert checkpoint.entry == "['model']" and list(checkpoint.tensors) == list(state)
    assert checkpoint.tensors["model.0.conv.weight"].dtype == np.float16  # cast when loaded


class Pickled(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)


def test_a_pickled_model_object_is_refused_with_the_way_out(tmp_path: Path) -> None:
    torch.save({"model": Pickled(), "epoch": 1}, tmp_path / "yolo.pt")
    with pytest.raises(CnnError, match=r"pickled Python objects .*Ultralytics.*state_dict\(\)"):
        read_checkpoint(tmp_path / "yolo.pt")
    torch.save({"epoch": 1, "lr": 0.1}, tmp_path / "empty.pt")
    with pytest.raises(CnnError, match=r"holds no state dict \(found 'epoch', 'lr'\)"):
        read_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"PK\3\4 not a zip")
    with pytest.raises(CnnError, match="cannot read weights"):
        read_checkpoint(tmp_path / "corrupt.pt")


def test_bfloat16_tensors_and_pt_writing(tmp_path: Path) -> None:
    torch.save({"w": torch.tensor([1.5, -2.0], dtype=torch.bfloat16)}, tmp_path / "b.pt")
    assert read_checkpoint(tmp_path / "b.pt").tensors["w"].dtype == np.float32
    write_checkpoint({"a.weight": np.ones((2, 2), np.float32)}, tmp_path / "w.pt")
    assert torch.load(tmp_path / "w.pt", weights_only=True)["a.weight"].shape == (2, 2)
