"""Checkpoints of hand-written modules with torchvision's and Ultralytics' key names, in every
format and container, loaded by name, prefixed, renamed, by order and reshaped: the ONNX
export and the torch backend give the reference's outputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
from reference_modules import (  # noqa: E402
    MIXED,
    TINY,
    YOLO_LIKE,
    Mixed,
    TinyResNet,
    YoloLike,
    randomized,
)
from torch import nn  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.weights import WeightsError, parse_rename, write_checkpoint  # noqa: E402


def onnx_outputs(model: Any, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.asarray(session.run(None, {name: x.numpy()})[0])


def assert_same(reference: nn.Module, spec: str, weights: Any, size: int, **options: Any) -> str:
    """ONNX export and torch backend, both loaded from ``weights``, equal the reference."""
    network = cnndsl.load(spec)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x).reshape(2, -1).numpy()
    exported = cnndsl.to_onnx(network, weights=weights, **options)
    np.testing.assert_allclose(onnx_outputs(exported, x).reshape(2, -1), expected,
                               rtol=1e-5, atol=1e-5)
    model = cnndsl.to_torch(network).eval()
    match = cnndsl.load_weights(model, weights, **options)
    with torch.no_grad():
        np.testing.assert_allclose(model(x).reshape(2, -1).numpy(), expected, rtol=1e-5,
                                   atol=1e-5)
    return match.report.how


def _plain(state: dict[str, Any]) -> Any:
    return state


SAVERS: dict[str, Callable[[dict[str, Any], Path], Path]] = {
    "pt": lambda s, d: _save(s, d / "w.pt"),
    "pth state_dict": lambda s, d: _save({"state_dict": s, "epoch": 3}, d / "w.pth"),
    "pt model + optimizer": lambda s, d: _save({"model": s, "optimizer": {"lr": 0.1}}, d / "w.pt"),
    "pt ema": lambda s, d: _save({"model": None, "ema": s, "updates": 4}, d / "w.pt"),
    "pt ddp": lambda s, d: _save({f"module.{k}": v for k, v in s.items()}, d / "w.pt"),
    "safetensors (package)": lambda s, d: _safetensors_package(s, d / "w.safetensors"),
    "safetensors (cnndsl)": lambda s, d: _write({k: v.numpy() for k, v in s.items()},
                                                d / "w.safetensors"),
    "npz": lambda s, d: _write({k: v.numpy() for k, v in s.items()}, d / "w.npz"),
}


def _save(obj: Any, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _write(arrays: dict[str, Any], path: Path) -> Path:
    write_checkpoint(arrays, path)
    return path


def _safetensors_package(state: dict[str, Any], path: Path) -> Path:
    from safetensors.torch import save_file

    save_file(state, str(path))
    return path


@pytest.mark.parametrize("kind", list(SAVERS))
def test_torchvision_names_load_by_name_from_every_format(tmp_path: Path, kind: str) -> None:
    reference = randomized(TinyResNet())
    path = SAVERS[kind](reference.state_dict(), tmp_path)
    assert assert_same(reference, TINY, path, 32) == "42 by name"


def test_ultralytics_names_load_renamed_from_its_checkpoint_layout(tmp_path: Path) -> None:
    reference = randomized(YoloLike())
    state = {k: v.half() if v.is_floating_point() else v
             for k, v in reference.state_dict().items()}
    reference.half().float()  # the reference at the checkpoint's (half) precision
    torch.save({"date": "2024-01-01", "version": "8.1.0", "epoch": -1, "best_fitness": None,
                "model": state, "ema": None, "updates": 0, "optimizer": None,
                "train_args": {"imgsz": 32}}, tmp_path / "best.pt")
    rename = parse_rename(["model.0.=stem.", "model.1.=down.", "model.2.=head."])
    path = tmp_path / "best.pt"
    assert assert_same(reference, YOLO_LIKE, path, 32, rename=rename, by="name") == "12 by name"
    assert assert_same(reference, YOLO_LIKE, path, 32) == "12 by order"  # auto
    hint = (r"did you mean --rename model\.0\.=stem\. --rename model\.1\.=down\. "
            r"--rename model\.2\.=head\.\?")
    with pytest.raises(WeightsError, match=hint):
        cnndsl.to_onnx(cnndsl.load(YOLO_LIKE), weights=path, by="name")


def test_by_order_with_children_after_parameters_and_a_linear_head(tmp_path: Path) -> None:
    reference = randomized(Mixed())
    keys = list(reference.state_dict())
    assert keys.index("trunk.1.layer_scale") < keys.index("trunk.1.block.0.weight")
    assert keys.index("trunk.0.proj.0.weight") < keys.index("trunk.0.f.a.weight")
    path = _write({k: v.numpy() for k, v in reference.state_dict().items()},
                  tmp_path / "mixed.safetensors")
    assert assert_same(reference, MIXED, path, 16) == "29 by order"
    assert assert_same(reference, MIXED, reference.state_dict(), 16, by="order") == "29 by order"


def test_strict_loads_nothing_and_lenient_loads_what_fits(tmp_path: Path) -> None:
    reference = randomized(TinyResNet())
    reference.fc = nn.Linear(16, 3)
    network = cnndsl.load(TINY)
    model = cnndsl.to_torch(network).eval()
    before = model.conv1.weight.clone()
    with pytest.raises(WeightsError) as caught:
        cnndsl.load_weights(model, reference)
    assert torch.equal(model.conv1.weight, before)
    text = str(caught.value)
    assert "40 of 42 tensors loaded (40 by name); 0 missing, 0 unexpected, 2 mismatched" in text
    assert "fc.weight: checkpoint (3, 16), network (10, 16)" in text
    match = cnndsl.load_weights(model, reference, strict=False)
    assert match.report.matched == 40
    assert torch.equal(model.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.layer2[0].downsample[1].num_batches_tracked,
                       reference.layer2[0].downsample[1].num_batches_tracked)
    with pytest.warns(UserWarning, match="2 mismatched"):
        cnndsl.to_onnx(network, weights=reference.state_dict(), strict=False)
