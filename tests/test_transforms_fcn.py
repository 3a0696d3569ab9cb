"""fully_convolutional: equal outputs at the training size, a spatial map at larger sizes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnndsl import cli, ir
from cnndsl.compiler import load
from cnndsl.diagnostics import CnnError
from cnndsl.transforms.fully_convolutional import convert_state_dict, fully_convolutional
from cnndsl.transforms.graph import infer_shapes

SPECS = Path(__file__).parent.parent / "specs"

# Padding-free, so the converted network at a larger input is the classifier slid over crops
# with the total stride (2): output (i, j) is the classifier on the crop at (2i, 2j).
TINY = """
network tiny(classes = 5) {
  input image: 3 x 20 x 20
  conv 6 3x3 -> bn -> relu -> maxpool 2x2
  conv 8 3x3 -> relu
  flatten
  dropout 0.3
  fc1: linear 16 -> relu -> bn
  fc2: linear classes
}
"""
STRIDE, TRAIN, LARGE = 2, 20, 36


def _random_state(network: ir.Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights and batch-norm statistics that are all non-trivial."""
    from cnndsl.backends.onnx import parameter_specs

    rng = np.random.default_rng(seed)
    state = {}
    for spec in parameter_specs(network):
        values = rng.normal(0.0, 0.3, spec.shape).astype(np.float32)
        state[spec.key] = np.abs(values) + 0.5 if spec.key.endswith("running_var") else values
    return state


def test_linear_layers_become_convolutions_with_the_map_as_kernel() -> None:
    network = load(TINY)
    result = fully_convolutional(network)
    converted = result.network
    kinds = [n.kind for n in converted.nodes]
    assert "flatten" not in kinds and "linear" not in kinds and "dropout" in kinds
    fc1, fc2 = converted.node("fc1.linear1"), converted.node("fc2")
    assert isinstance(fc1, ir.Conv) and isinstance(fc2, ir.Conv)
    assert (fc1.in_channels, fc1.kernel, fc1.padding) == (8, (7, 7), (0, 0, 0, 0))
    assert fc2.kernel == (1, 1)
    assert {k: c.weight_shape for k, c in result.conversions.items()} == {
        "fc1.linear1": (16, 8, 7, 7), "fc2": (5, 16, 1, 1)}
    assert converted.total_params == network.total_params
    assert converted.output_shapes() == {"fc2": (5, 1, 1)}
    assert infer_shapes(converted, (3, LARGE, LARGE)).output_shapes() == {"fc2": (5, 9, 9)}
    net, weight_map = result  # unpacks as (network, weight_map)
    assert net is converted and weight_map is result.conversions


@pytest.mark.parametrize(("spec", "train", "large", "grid"), [
    ("alexnet.cnn", 1, 6, "identity adaptive pool dropped"),
    ("vgg16.cnn", 1, 6, "identity adaptive pool dropped"),
    ("resnet18.cnn", 1, 1, "gap stays"),
])
def test_classifiers_give_a_map_at_384(spec: str, train: int, large: int, grid: str) -> None:
    network = load(SPECS / spec)
    converted = fully_convolutional(network).network
    (shape,) = converted.output_shapes().values()
    assert shape == (1000, train, train)
    (big,) = infer_shapes(converted, (3, 384, 384)).output_shapes().values()
    assert big == (1000, large, large), grid
    assert not any(isinstance(n, ir.AdaptivePool) for n in converted.nodes)


def test_a_box_head_has_no_convolutional_form() -> None:
    with pytest.raises(CnnError, match="box head"):
        fully_convolutional(load(SPECS / "classify_localize.cnn"))


def test_state_dict_conversion_checks_sizes() -> None:
    result = fully_convolutional(load(TINY))
    with pytest.raises(ValueError, match=r"fc2\.weight"):
        convert_state_dict({"fc2.weight": np.zeros((5, 15))}, result.conversions)


def test_torch_equal_at_training_size_and_sliding_at_larger() -> None:
    torch = pytest.importorskip("torch")
    from cnndsl.backends.torch.runtime import to_torch

    network = load(TINY)
    result = fully_convolutional(network)
    state = {k: torch.from_numpy(v) for k, v in _random_state(network).items()}
    original = to_torch(network).eval()
    missing, unexpected = original.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing)
    converted = to_torch(result.network).eval()
    converted.load_state_dict(convert_state_dict(original.state_dict(), result.conversions))
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(2, 3, LARGE, LARGE))
                         .astype(np.float32))
    with torch.no_grad():
        crop = x[:, :, :TRAIN, :TRAIN]
        assert converted(crop).shape == (2, 5, 1, 1)
        torch.testing.assert_close(converted(crop).flatten(1), original(crop),
                                   rtol=1e-5, atol=1e-5)
        dense = converted(x)
        assert dense.shape == (2, 5, 9, 9)
        for i, j in [(0, 0), (3, 5), (8, 8)]:
            window = x[:, :, STRIDE * i:STRIDE * i + TRAIN, STRIDE * j:STRIDE * j + TRAIN]
            torch.testing.assert_close(dense[:, :, i, j], original(window),
                                       rtol=1e-5, atol=1e-5)


def test_onnx_equal_at_training_size_and_sliding_at_larger() -> None:
    ort = pytest.importorskip("onnxruntime")
    from cnndsl.backends.onnx import to_onnx

    network = load(TINY)
    result = fully_convolutional(network)
    weights = _random_state(network, seed=2)

    def session(net: ir.Network, state: dict[str, np.ndarray]) -> object:
        return ort.InferenceSession(to_onnx(net, weights=state).SerializeToString(),
                                    providers=["CPUExecutionProvider"])

    original = session(network, weights)
    converted_weights = convert_state_dict(weights, result.conversions)
    same_size = session(result.network, converted_weights)
    large = session(infer_shapes(result.network, (3, LARGE, LARGE)), converted_weights)
    x = np.random.default_rng(3).normal(size=(2, 3, LARGE, LARGE)).astype(np.float32)
    crop = x[:, :, :TRAIN, :TRAIN]
    (expected,) = original.run(None, {"image": crop})
    (got,) = same_size.run(None, {"image": crop})
    np.testing.assert_allclose(got.reshape(2, -1), expected, rtol=1e-5, atol=1e-5)
    (dense,) = large.run(None, {"image": x})
    assert dense.shape == (2, 5, 9, 9)
    for i, j in [(0, 0), (4, 2), (8, 8)]:
        window = x[:, :, STRIDE * i:STRIDE * i + TRAIN, STRIDE * j:STRIDE * j + TRAIN]
        (slid,) = original.run(None, {"image": np.ascontiguousarray(window)})
        np.testing.assert_allclose(dense[:, :, i, j], slid, rtol=1e-5, atol=1e-5)


def test_cli_writes_spec_weights_and_onnx(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from cnndsl.backends.torch.runtime import to_torch

    spec = tmp_path / "tiny.cnn"
    spec.write_text(TINY)
    network = load(spec)
    original = to_torch(network, seed=5).eval()
    torch.save(original.state_dict(), tmp_path / "tiny.pt")

    out = io.StringIO()
    assert cli.main(["fcn", str(spec), "-o", str(tmp_path / "fcn.cnn"), "--at", "3x36x36"],
                    out) == 0
    printed = load(tmp_path / "fcn.cnn")
    assert printed.output_shapes() == {"fc2": (5, 9, 9)}
    assert printed.expects and all(e.ok for e in printed.expects)

    args = ["fcn", str(spec), "--to", "torch", "--weights", str(tmp_path / "tiny.pt"),
            "-o", str(tmp_path / "fcn.pt")]
    assert cli.main(args, out) == 0
    rebuilt = to_torch(printed).eval()
    rebuilt.load_state_dict(torch.load(tmp_path / "fcn.pt", weights_only=True))
    x = torch.randn(1, 3, TRAIN, TRAIN)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x).flatten(1), original(x), rtol=1e-5, atol=1e-5)

    args = ["fcn", str(spec), "--to", "onnx", "--at", "3x36x36", "-o", str(tmp_path / "f.onnx")]
    assert cli.main(args, out) == 0
    import onnx

    output = onnx.load(str(tmp_path / "f.onnx")).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in output] == ["N", 5, 9, 9]  # the --at size
    assert cli.main(["fcn", str(spec), "--to", "onnx"], out) == 2  # needs -o


def test_cli_onnx_without_weights_needs_no_torch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from cnndsl.backends.onnx import to_onnx

    spec = tmp_path / "tiny.cnn"
    spec.write_text(TINY)
    script = ("import sys\nsys.modules['torch'] = None  # as if torch were not installed\n"
              "from cnndsl import cli\n"
              f"sys.exit(cli.main(['fcn', {str(spec)!r}, '--to', 'onnx', '--seed', '3', '-o', "
              f"{str(tmp_path / 'f.onnx')!r}]))\n")
    root = Path(__file__).parent.parent
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)},
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    # The ONNX backend's seeded weights, converted: equal to the classifier at its own size.
    x = np.random.default_rng(0).standard_normal((2, 3, TRAIN, TRAIN), dtype=np.float32)
    (dense,) = ort.InferenceSession(str(tmp_path / "f.onnx")).run(None, {"image": x})
    original = ort.InferenceSession(to_onnx(load(spec), seed=3).SerializeToString())
    (reference,) = original.run(None, {"image": x})
    np.testing.assert_allclose(dense.reshape(reference.shape), reference, rtol=1e-5, atol=1e-5)


def test_the_converted_network_has_fresh_receptive_fields() -> None:
    network = load(SPECS / "vgg16.cnn")
    assert network.nodes[-1].receptive_field.whole  # type: ignore[union-attr]
    converted = fully_convolutional(network).network
    last = converted.nodes[-1].receptive_field
    assert last is not None and not last.whole and last.size is not None
