"""Path labels reach every backend: the live module, the emitted source, ONNX initializers and
loading by name give a reference's own keys (``features.0.weight``, ``model.0.conv.weight``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
from reference_modules import randomized  # noqa: E402
from torch import nn  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl.backends.torch.emit import emit  # noqa: E402

ALEXNET_LIKE = """
network alexnet_like(classes = 10) {
  input image: 3 x 32 x 32
  features[]: conv 8 3x3 /2 pad 1 -> relu -> maxpool 2x2
    -> conv 16 3x3 pad 1 -> relu
  avgpool: adaptive_avgpool 2x2
  flatten
  classifier[]: dropout 0.5 -> linear 32 -> relu -> linear classes
}
"""


class AlexNetLike(nn.Module):
    """torchvision's AlexNet layout: two nn.Sequential stages around an adaptive pool."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), nn.Linear(64, 32), nn.ReLU(inplace=True), nn.Linear(32, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


YOLO_LIKE = """
block Conv(c, s = 1) {
  conv: conv c 3x3 /s pad 1
  bn: bn eps=0.001 momentum=0.03
  act: silu
}
block Bottleneck(c) {
  cv1: Conv(c)
  cv2: Conv(c)
}
block C2f(c, n = 2) {
  cv1: Conv(c)
  m: Bottleneck(c) x n
  cat: concat(cv1, m.*)
  cv2: Conv(c)
}
network yolo_like {
  input image: 3 x 32 x 32
  model.0: Conv(8, 2)
  model.1: C2f(8)
  model.2: Conv(16, 2)
  cat: concat(model.2, model.2)
  model.3.conv: conv 6 1x1
}
"""


class Conv(nn.Module):
    def __init__(self, c1: int, c2: int, s: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, 3, s, 1, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=0.001, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.cv1, self.cv2 = Conv(c, c), Conv(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv2(self.cv1(x))


class C2f(nn.Module):
    """Ultralytics' C2f with the chunk left out: every bottleneck's output concatenated."""

    def __init__(self, c: int, n: int = 2) -> None:
        super().__init__()
        self.cv1 = Conv(c, c)
        self.m = nn.ModuleList(Bottleneck(c) for _ in range(n))
        self.cv2 = Conv((n + 1) * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class Cat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(32, 6, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x, x], 1))


class YoloLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Sequential(Conv(3, 8, 2), C2f(8), Conv(8, 16, 2), Cat())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # type: ignore[no-any-return]


def _keys(module: nn.Module) -> list[str]:
    return [k for k in module.state_dict() if not k.endswith("num_batches_tracked")]


def _onnx(model: Any, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


@pytest.mark.parametrize(("spec", "reference"), [
    (ALEXNET_LIKE, AlexNetLike), (YOLO_LIKE, YoloLike),
], ids=["alexnet_like", "yolo_like"])
def test_reference_keys_load_by_name_in_torch_and_onnx(spec: str,
                                                       reference: type[nn.Module]) -> None:
    network = cnndsl.load(spec)
    ref = randomized(reference())
    live = cnndsl.to_torch(network).eval()
    expected_keys = _keys(ref)
    assert _keys(live) == expected_keys
    with torch.device("meta"):
        namespace: dict[str, Any] = {}
        exec(compile(emit(network), "<generated>", "exec"), namespace)
        generated = namespace[namespace["__all__"][0]]()
    assert _keys(generated) == expected_keys

    match = cnndsl.load_weights(live, ref, by="name")
    assert match.report.ok
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = ref(x).numpy()
        np.testing.assert_allclose(live(x).numpy(), expected, rtol=1e-5, atol=1e-5)
        generated = namespace[namespace["__all__"][0]]().eval()
        generated.load_state_dict(live.state_dict())
        np.testing.assert_allclose(generated(x).numpy(), expected, rtol=1e-5, atol=1e-5)

    state = {k: v.numpy() for k, v in ref.state_dict().items()}
    exported = cnndsl.to_onnx(network, weights=state, by="name", strict=True)
    initializers = {i.name for i in exported.graph.initializer}
    assert {k for k in expected_keys if not k.endswith("num_batches_tracked")} <= initializers
    np.testing.assert_allclose(_onnx(exported, x), expected, rtol=1e-5, atol=1e-5)


def test_a_numbered_chain_with_a_skip_is_emitted_with_its_keys() -> None:
    spec = """
network n {
  input image: 3 x 16 x 16
  features[]: conv 8 3x3 pad 1 -> relu -> conv 8 3x3 pad 1 -> relu
  mixed: concat(features, features.0) -> conv 4 1x1
}
"""
    network = cnndsl.load(spec)
    live = cnndsl.to_torch(network).eval()
    namespace: dict[str, Any] = {}
    exec(compile(emit(network), "<generated>", "exec"), namespace)
    generated = namespace[namespace["__all__"][0]]().eval()
    assert _keys(live) == _keys(generated) == [
        "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias",
        "mixed.conv1.weight", "mixed.conv1.bias",
    ]
    generated.load_state_dict(live.state_dict())
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(live(x), generated(x))
