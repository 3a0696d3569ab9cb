"""Checkpoints of hand-written modules with torchvision's and Ultralytics' key names, in every
format and container, loaded by name, prefixed, renamed, by order and reshaped: the ONNX
export and the torch backend give the reference's outputs."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
from torch import nn  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.weights import WeightsError, parse_rename, write_checkpoint  # noqa: E402

TINY = """
block basic(width, stride = 1) {
  residual {
    conv width 3x3 /stride pad 1 -> bn -> relu
    conv width 3x3 pad 1 -> bn
  }
  -> relu
}

network tiny(classes = 10) {
  input image: 3 x 32 x 32
  conv1: conv 8 7x7 /2 pad 3
  bn1: bn
  relu
  maxpool 3x3 /2 pad 1
  layer1: basic(8) x 1
  layer2: basic(16, stride = 2) -> basic(16)
  avgpool: gap
  flatten
  fc: linear classes
}
"""

# A block registers its projection before its branch (RegNet), another owns a layer scale
# listed before its children (ConvNeXt); the head is a 1x1 convolution where the reference has
# a linear layer.
MIXED = """
network mixed {
  input image: 3 x 16 x 16
  stem: conv 8 3x3 pad 1 -> bn -> relu
  s1: residual {
    conv 16 1x1 -> bn -> relu
    conv 16 3x3 pad 1 -> bn
  }
  relu
  s2: residual {
    conv 16 7x7 pad 3 groups=16 -> conv 64 1x1 -> relu -> conv 16 1x1
    conv 16 1x1 groups=16 bias=false
  }
  gap
  head: conv 5 1x1
}
"""

YOLO_LIKE = """
block cbs(filters, stride = 1) {
  conv: conv filters 3x3 /stride pad 1
  bn: bn
  silu
}

network yolo_like {
  input image: 3 x 32 x 32
  stem: cbs(8, 2)
  down: cbs(16, 2)
  head: conv 6 1x1
}
"""


def randomized(module: nn.Module) -> nn.Module:
    """Random values in every tensor (batch-norm statistics too), eval mode."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                values = torch.rand(tensor.shape, generator=generator)
                tensor.copy_(values + 0.5 if name.endswith("running_var") else values - 0.5)
    return module.eval()


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock's attribute names."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TinyResNet(nn.Module):
    """torchvision.models.ResNet's names at a small size."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(self.layer2(self.layer1(x))), 1))


class RegBlock(nn.Module):
    """torchvision's ResBottleneckBlock order: the projection registered before the branch."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.BatchNorm2d(16))
        self.f = nn.Sequential(OrderedDict(
            a=nn.Conv2d(8, 16, 1, bias=False), a_bn=nn.BatchNorm2d(16), a_relu=nn.ReLU(),
            b=nn.Conv2d(16, 16, 3, padding=1, bias=False), b_bn=nn.BatchNorm2d(16)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.proj(x) + self.f(x))


class CNBlock(nn.Module):
    """torchvision's ConvNeXt block: its own layer scale is listed before its children."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(channels, channels, 7, padding=3, groups=channels),
                                   nn.Conv2d(channels, 4 * channels, 1), nn.ReLU(),
                                   nn.Conv2d(4 * channels, channels, 1))
        self.layer_scale = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer_scale * self.block(x)


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.trunk = nn.Sequential(RegBlock(), CNBlock(16))
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(self.stem(x)).mean((2, 3)))


class Conv(nn.Module):
    """ultralytics.nn.modules.Conv: conv, bn, act."""

    def __init__(self, c1: int, c2: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-5)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class YoloLike(nn.Module):
    """Ultralytics' layout: every layer an index of ``model``."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(Conv(3, 8, 2), Conv(8, 16, 2), nn.Conv2d(16, 6, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


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
