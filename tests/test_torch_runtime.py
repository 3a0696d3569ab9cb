"""The live PyTorch module: names, shapes and parameter counts against the IR, layer semantics
against PyTorch's functional ops, seeded initialisation, and weight porting."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from spec_helpers import SPECS, small_network  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import cnndsl  # noqa: E402
from cnndsl import ir  # noqa: E402
from cnndsl.analysis.params import total_buffers  # noqa: E402
from cnndsl.backends.torch.runtime import SpecModule, load_weights, to_torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]



def random_inputs(network: ir.Network, batch: int = 2) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(batch, *network.node(name).shape, generator=generator)
            for name in network.inputs]


def deterministic(module: nn.Module) -> nn.Module:
    """Batch statistics (finite values in deep random nets) but no dropout noise."""
    module.train()
    for layer in module.modules():
        if isinstance(layer, nn.Dropout):
            layer.eval()
    return module


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_tensor_has_the_shape_and_every_layer_the_name_of_the_ir(path: Path) -> None:
    network = small_network(path)
    model = deterministic(to_torch(network))
    nodes = network.by_name()
    seen: dict[str, tuple[int, ...]] = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: seen.__setitem__(name, tuple(out.shape[1:]))
        )
        for name, module in model.named_modules()
        if name in nodes
    ]
    with torch.no_grad():
        traced = model.trace(*random_inputs(network))
    for hook in hooks:
        hook.remove()
    modules = {n.name for n in network.nodes if n.kind not in ("input", "add", "mul", "concat",
                                                                "flatten")}
    assert set(seen) == modules
    for name, shape in seen.items():
        assert shape == tuple(nodes[name].shape), name
    for node in network.nodes:
        assert tuple(traced[node.name].shape[1:]) == tuple(node.shape), node.name


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_parameter_and_buffer_counts_equal_the_ir(path: Path) -> None:
    network = small_network(path)
    model = SpecModule(network)
    assert sum(p.numel() for p in model.parameters()) == network.total_params
    running = sum(b.numel() for name, b in model.named_buffers()
                  if not name.endswith("num_batches_tracked"))
    assert running == total_buffers(network)


def test_layers_sit_at_their_spec_paths_in_node_order() -> None:
    model = to_torch(ROOT / "specs" / "resnet50.cnn", input="3x64x64")
    assert isinstance(model.layer3[2].conv1, nn.Conv2d)
    assert model.get_submodule("layer1.0.downsample.1") is model.layer1[0].downsample[1]
    keys = list(model.state_dict())
    assert keys[:2] == ["conv1.weight", "bn1.weight"]
    assert keys.index("layer1.0.bn3.weight") < keys.index("layer1.0.downsample.0.weight")
    assert keys[-2:] == ["fc.weight", "fc.bias"]
    assert model.layer1[0].relu1.inplace  # after batch norm, read once: may run in place


TWO_INPUTS = """
network two(classes = 4) {
  input image: 3 x 16 x 16
  input mask: 1 x 16 x 16
  a: image -> conv 8 3x3 /2 pad same -> relu
  b: mask -> conv 8 3x3 /2 pad same -> sigmoid
  m: mul(a, b) -> channel_maxpool 2 -> lrn 3 -> upsample 2x bilinear
  c: concat(m, image) -> gap -> flatten -> linear classes -> softmax
  d: add(a, b)
  output c, d
}
"""


def reference_two(model: SpecModule, image: torch.Tensor, mask: torch.Tensor) -> dict:
    """The same network written with PyTorch's functional ops."""
    a = F.relu(F.conv2d(F.pad(image, (0, 1, 0, 1)), model.a.conv1.weight,
                        model.a.conv1.bias, stride=2))
    b = torch.sigmoid(F.conv2d(F.pad(mask, (0, 1, 0, 1)), model.b.conv1.weight,
                               model.b.conv1.bias, stride=2))
    m = a * b
    n, c, h, w = m.shape
    m = m.reshape(n, c // 2, 2, h, w).amax(2)
    m = F.local_response_norm(m, 3)
    m = F.interpolate(m, scale_factor=2, mode="bilinear", align_corners=False)
    c_ = torch.cat([m, image], 1).mean((2, 3))
    c_ = torch.softmax(F.linear(c_, model.c.linear1.weight, model.c.linear1.bias), 1)
    return {"c": c_, "d": a + b}


def test_several_inputs_and_outputs_and_layer_semantics() -> None:
    model = to_torch(TWO_INPUTS, seed=3).eval()
    image, mask = torch.randn(2, 3, 16, 16), torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        positional = model(image, mask)
        keywords = model(mask=mask, image=image)
        expected = reference_two(model, image, mask)
    assert list(positional) == ["c", "d"]
    for name in ("c", "d"):
        assert torch.equal(positional[name], keywords[name])
        torch.testing.assert_close(positional[name], expected[name])
    with pytest.raises(TypeError, match="missing input"):
        model(image)


def test_initialisation_is_seeded_and_follows_common_practice() -> None:
    spec = ROOT / "specs" / "resnet18.cnn"
    first = to_torch(spec, seed=7, input="3x32x32").state_dict()
    again = to_torch(spec, seed=7, input="3x32x32").state_dict()
    other = to_torch(spec, seed=8, input="3x32x32").state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["conv1.weight"], other["conv1.weight"])
    assert torch.equal(first["bn1.weight"], torch.ones(64))
    assert torch.equal(first["bn1.bias"], torch.zeros(64))
    weight = first["layer1.0.conv1.weight"]  # 64 x 64 x 3 x 3: fan_out = 576
    assert abs(weight.std().item() - (2 / 576) ** 0.5) < 0.003
    bound = 1 / 512**0.5
    assert first["fc.weight"].abs().max() <= bound and first["fc.bias"].abs().max() <= bound


LENET = ROOT / "specs" / "lenet5.cnn"


class HandLeNet(nn.Module):
    """LeNet-5 written by hand with other names, registered in the spec's order."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
            nn.AvgPool2d(2), nn.Conv2d(16, 120, 5), nn.Tanh(),
        )
        self.classifier = nn.Sequential(nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def test_weights_of_a_hand_written_model_load_by_order() -> None:
    reference = HandLeNet().eval()
    model = to_torch(LENET, seed=1).eval()
    pairs = load_weights(model, reference.state_dict(), by="order").pairs
    assert pairs["c1.weight"] == "features.0.weight"
    assert pairs["logits.bias"] == "classifier.2.bias"
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    model = to_torch(LENET, seed=2).eval()
    assert load_weights(model, reference).report.how == "10 by order"  # auto: no name fits
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))


def test_a_mismatch_is_one_report_with_both_shapes_and_copies_nothing() -> None:
    reference = HandLeNet()
    reference.classifier[0] = nn.Linear(120, 80)
    model = to_torch(LENET)
    before = model.c1.weight.clone()
    with pytest.raises(ValueError, match=r"f6\.weight: checkpoint classifier\.0\.weight "
                                         r"\(80, 120\), network \(84, 120\)"):
        cnndsl.load_weights(model, reference, by="order")
    assert torch.equal(model.c1.weight, before)  # nothing copied
    with pytest.raises(ValueError, match=r"9 of 10 tensors loaded .*1 missing"):
        load_weights(model, dict(list(HandLeNet().state_dict().items())[:-1]))
    match = load_weights(model, reference, by="order", strict=False)  # what fits is copied
    assert match.report.matched == 6 and not torch.equal(model.c1.weight, before)


def test_load_by_name_and_batch_norm_buffers_without_counters() -> None:
    source = to_torch(ROOT / "specs" / "resnet18.cnn", seed=1, input="3x32x32")
    with torch.no_grad():
        source.bn1.running_mean.uniform_()
    tensors = {k: v for k, v in source.state_dict().items()
               if not k.endswith("num_batches_tracked")}
    target = to_torch(ROOT / "specs" / "resnet18.cnn", seed=2, input="3x32x32")
    load_weights(target, tensors, by="name")
    assert torch.equal(target.bn1.running_mean, source.bn1.running_mean)
    assert torch.equal(target.fc.weight, source.fc.weight)
    tensors.pop("fc.bias")
    with pytest.raises(ValueError, match=r"missing \(1\): fc\.bias \(1000,\)"):
        load_weights(target, tensors, by="name")
