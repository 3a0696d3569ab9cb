"""The ONNX backend against onnx's checker, ONNX shape inference and the PyTorch backend.

Every spec in specs/ is exported at the default opset and at 13; the model must pass the full
checker, its inferred output shapes must be the IR's, and onnxruntime must reproduce the PyTorch
backend's outputs (same weights, moved by state_dict key) for batch 1 and batch 3 through one
dynamic-batch model. Helpers here are reused by test_onnx_properties.py.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import cnndsl
from cnndsl import ir
from cnndsl.backends import onnx as onnx_backend
from cnndsl.cli import main
from cnndsl.diagnostics import CnnError, Code

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p.name for p in (ROOT / "specs").glob("*.cnn"))
DEFAULT = onnx_backend.max_opset()
TOLERANCE = 1e-4
SIDES = (64, 96, 128, 224)  # small inputs first; a spec whose pools need more gets more


def _usable(result: cnndsl.CheckResult) -> bool:
    # An expect line about the full-size input may fail at a small input; nothing else may.
    return result.network is not None and all(
        d.code is Code.EXPECT_FAILED for d in result.diagnostics if d.severity == "error"
    )


@functools.cache
def spec_network(name: str) -> ir.Network:
    """The spec at a small input (LeNet at its own 32 x 32)."""
    path = ROOT / "specs" / name
    declared = cnndsl.check(str(path))
    assert declared.network is not None, declared.diagnostics
    first = declared.network.node(declared.network.inputs[0])
    assert isinstance(first, ir.Input)
    channels = first.declared[0]
    for side in SIDES:
        height = first.declared[1]
        if isinstance(height, int) and height <= side:
            break
        result = cnndsl.check(str(path), input=f"{channels}x{side}x{side}")
        if _usable(result):
            assert result.network is not None
            return result.network
    return declared.network


def torch_model(network: ir.Network, seed: int = 0) -> torch.nn.Module:
    """The PyTorch backend's module in eval mode with calibrated batch-norm statistics.

    Running statistics come from one training-mode pass over random inputs (as after training,
    activations stay near unit scale, so an absolute tolerance means something), then scales and
    shifts are perturbed so that folding them is a real test.
    """
    model = cnndsl.to_torch(network, seed=seed)
    norms = [m for m in model.modules()
             if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)]
    generator = torch.Generator().manual_seed(seed + 1)
    if norms:
        for norm in norms:
            norm.momentum = None  # cumulative average: one batch gives that batch's statistics
        model.train()
        with torch.no_grad():
            model(torch.from_numpy(sample(network, 16, seed=seed + 7)))
        with torch.no_grad():
            for norm in norms:
                norm.momentum = 0.1
                norm.weight.copy_(torch.rand(norm.num_features, generator=generator) + 0.5)
                norm.bias.copy_(torch.randn(norm.num_features, generator=generator) * 0.1)
            # Small scales on residual branches, as trained ResNets have, keep deep sums tame.
            consumers = network.consumers()
            for node in network.nodes:
                if isinstance(node, ir.BatchNorm) and any(
                        isinstance(network.node(c), ir.Add) for c in consumers[node.name]):
                    model.get_submodule(node.name).weight.mul_(0.2)
    return model.eval()


def state_arrays(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The state_dict as numpy arrays, as an .npz of it would hold them."""
    return {key: value.detach().numpy() for key, value in model.state_dict().items()}


def torch_outputs(model: torch.nn.Module, network: ir.Network,
                  batch: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs by name."""
    with torch.no_grad():
        result = model(torch.from_numpy(batch))
    if isinstance(result, dict):
        return {name: value.numpy() for name, value in result.items()}
    (name,) = network.outputs
    return {name: result.numpy()}


def session(model: onnx.ModelProto | bytes) -> ort.InferenceSession:
    """A CPU session without graph optimisations, so that the lowering itself is tested."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 2
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def ort_outputs(runner: ort.InferenceSession, network: ir.Network,
                batch: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs by name."""
    names = list(network.outputs)
    values = runner.run(names, {network.inputs[0]: batch})
    return dict(zip(names, values, strict=True))


def sample(network: ir.Network, batch: int, seed: int = 0) -> np.ndarray:
    """A random input batch."""
    shape = network.node(network.inputs[0]).shape
    assert shape is not None and all(isinstance(d, int) for d in shape)
    return np.random.default_rng(seed).standard_normal((batch, *shape), dtype=np.float32)


def assert_matches(network: ir.Network, model_bytes: bytes, model: torch.nn.Module) -> None:
    """onnxruntime equals PyTorch for batch 1 and batch 3 through the same session."""
    runner = session(model_bytes)
    for batch in (1, 3):
        x = sample(network, batch, seed=batch)
        expected = torch_outputs(model, network, x)
        actual = ort_outputs(runner, network, x)
        for name, value in expected.items():
            assert actual[name].shape == value.shape, name
            difference = float(np.max(np.abs(actual[name] - value)))
            assert difference <= TOLERANCE, f"{name} (batch {batch}): max |diff| {difference:g}"


def inferred_output_shapes(model: onnx.ModelProto) -> dict[str, list[int | str]]:
    """Output shapes as strict ONNX shape inference derives them from the graph alone.

    Inference runs on a copy whose outputs carry no declared shape and whose initializers are
    inputs of the same shapes (their values never decide a shape: constants are nodes), which
    keeps it fast for models of hundreds of megabytes.
    """
    graph = model.graph
    weights = [onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
               for t in graph.initializer]
    open_outputs = [onnx.helper.make_tensor_value_info(o.name, onnx.TensorProto.FLOAT, None)
                    for o in graph.output]

    def weightless(outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:
        light = onnx.helper.make_model(
            onnx.helper.make_graph(list(graph.node), graph.name, [*graph.input, *weights],
                                   outputs),
            opset_imports=list(model.opset_import))
        light.ir_version = model.ir_version
        return light

    inferred = onnx.shape_inference.infer_shapes(weightless(open_outputs), strict_mode=True)
    shapes = {}
    for output in inferred.graph.output:
        dims = output.type.tensor_type.shape.dim
        shapes[output.name] = [d.dim_param if d.HasField("dim_param") else d.dim_value
                               for d in dims]
    return shapes


def check_structure(network: ir.Network, model: onnx.ModelProto) -> bytes:
    """Inferred output shapes are the IR's (batch symbolic); the full checker passes.

    Returns the serialised model, serialised once for the checker and onnxruntime.
    """
    shapes = inferred_output_shapes(model)
    # ONNX's Resize inference multiplies every axis by its scale and cannot scale a symbolic
    # batch (even by 1), so a graph with upsampling reaches its outputs with an unnamed batch.
    resize_loses_batch = any(n.op_type == "Resize" for n in model.graph.node)
    for name, target in network.outputs.items():
        ir_shape = network.node(target).shape
        assert ir_shape is not None
        batch, *rest = shapes[name]
        assert rest == list(ir_shape), name
        assert batch == "N" or (resize_loses_batch and str(batch).startswith("unk__")), name
    data = model.SerializeToString()
    onnx.checker.check_model(data, full_check=True)
    return data


# every spec ---------------------------------------------------------------------------------


@functools.cache
def _reference(name: str) -> torch.nn.Module:
    return torch_model(spec_network(name))


@pytest.mark.parametrize("opset", [DEFAULT, 13], ids=["default", "opset13"])
@pytest.mark.parametrize("spec", SPECS)
def test_spec_exports_checks_and_matches_torch(spec: str, opset: int) -> None:
    network = spec_network(spec)
    model = _reference(spec)
    exported = cnndsl.to_onnx(network, opset=opset, weights=state_arrays(model))
    assert exported.opset_import[0].version == opset
    data = check_structure(network, exported)
    del exported
    assert_matches(network, data, model)


def _has_foldable_batchnorm(network: ir.Network) -> bool:
    return any(isinstance(n, ir.BatchNorm) for n in network.nodes)


@pytest.mark.parametrize("spec", [s for s in SPECS if _has_foldable_batchnorm(spec_network(s))])
def test_folded_batchnorm_still_matches(spec: str) -> None:
    network = spec_network(spec)
    model = _reference(spec)
    exported = cnndsl.to_onnx(network, weights=state_arrays(model), fold_batchnorm=True)
    kinds = {node.op_type for node in exported.graph.node}
    assert "BatchNormalization" not in kinds or any(
        isinstance(n, ir.BatchNorm) and not isinstance(network.node(n.inputs[0]), ir.Conv)
        for n in network.nodes
    )
    assert_matches(network, check_structure(network, exported), model)


# names, metadata, determinism -------------------------------------------------------------------


def test_names_follow_the_spec_and_the_torch_state_dict() -> None:
    network = spec_network("resnet50.cnn")
    model = cnndsl.to_onnx(network)
    initializers = [t.name for t in model.graph.initializer]
    keys = [k for k in cnndsl.to_torch(network).state_dict()  # the keys only: no calibration
            if not k.endswith("num_batches_tracked")]
    assert initializers == keys
    node_names = {n.name for n in model.graph.node}
    assert {"conv1", "layer1.0.conv1", "layer1.0.downsample.0", "fc"} <= node_names
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["fc"]
    assert model.producer_name == "cnndsl"
    props = {p.key: p.value for p in model.metadata_props}
    assert props["cnndsl.network"] == "resnet50"
    assert props["cnndsl.version"] == cnndsl.__version__
    assert props["cnndsl.file"].endswith("resnet50.cnn")


def test_static_batch_fixes_the_batch() -> None:
    model = cnndsl.to_onnx(spec_network("lenet5.cnn"), dynamic_batch=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 1, 32, 32]


def test_two_exports_are_byte_identical(tmp_path: Path) -> None:
    spec = str(ROOT / "specs" / "yolo_tiny.cnn")
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    for path in (first, second):
        assert main(["compile", spec, "--to", "onnx", "-o", str(path)]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert first.stat().st_size > 1000


def test_seed_changes_the_weights_only() -> None:
    network = spec_network("lenet5.cnn")
    a, b = cnndsl.to_onnx(network, seed=0), cnndsl.to_onnx(network, seed=1)
    assert a.graph.node == b.graph.node
    assert a.graph.initializer[0].raw_data != b.graph.initializer[0].raw_data


# weights files --------------------------------------------------------------------------------


def test_npz_and_safetensors_weights_load_by_key(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    network = spec_network("lenet5.cnn")
    model = torch_model(network, seed=3)
    arrays = {k: v for k, v in state_arrays(model).items()}
    np.savez(tmp_path / "w.npz", **arrays)
    save_file(arrays, str(tmp_path / "w.safetensors"))
    for path in (tmp_path / "w.npz", tmp_path / "w.safetensors"):
        exported = cnndsl.to_onnx(network, weights=path)
        assert_matches(network, exported.SerializeToString(), model)


def test_weights_that_do_not_fit_are_one_positioned_report() -> None:
    network = spec_network("lenet5.cnn")
    arrays = state_arrays(torch_model(network))
    arrays["c3.weight"] = arrays["c3.weight"][:8]
    with pytest.raises(CnnError) as caught:
        cnndsl.to_onnx(network, weights=arrays, by="name")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code is Code.WEIGHTS
    assert diagnostic.span == network.node("c3").span
    assert "c3.weight: checkpoint (8, 6, 5, 5), network (16, 6, 5, 5)" in diagnostic.notes[0]
    del arrays["c3.weight"]
    with pytest.raises(CnnError, match=r"1 missing"):
        cnndsl.to_onnx(network, weights=arrays)
    with pytest.warns(UserWarning, match=r"missing \(1\): c3\.weight"):
        cnndsl.to_onnx(network, weights=arrays, strict=False)


# the command line -------------------------------------------------------------------------------


def test_compile_writes_the_default_path_and_reports(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["compile", str(ROOT / "specs" / "lenet5.cnn"), "--to", "onnx", "--opset", "13",
                 "--static-batch", "--fold-bn"])
    assert code == 0
    assert "lenet5.onnx" in capsys.readouterr().out
    model = onnx.load(str(tmp_path / "lenet5.onnx"))
    assert model.opset_import[0].version == 13
    assert [p.name for p in tmp_path.iterdir()] == ["lenet5.onnx"]  # no temporary left


def test_compile_flags_reach_the_model(tmp_path: Path) -> None:
    spec = tmp_path / "folded.cnn"
    spec.write_text("network folded {\n  input image: 3 x 16 x 16\n  conv 8 3x3 pad 1 -> bn -> relu"
                    "\n  fc: gap -> flatten -> linear 4\n}\n")

    def compile_(*flags: str) -> onnx.ModelProto:
        target = tmp_path / f"m{len(list(tmp_path.iterdir()))}.onnx"
        assert main(["compile", str(spec), "--to", "onnx", *flags, "-o", str(target)]) == 0
        return onnx.load(str(target))

    fixed = compile_("--static-batch", "--fold-bn")
    dims = [d.dim_value for d in fixed.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 16, 16]
    assert "BatchNormalization" not in {node.op_type for node in fixed.graph.node}
    seed0, seed1 = compile_(), compile_("--seed", "1")
    assert seed0.graph.initializer[0].raw_data != seed1.graph.initializer[0].raw_data
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in seed1.graph.initializer}
    np.savez(tmp_path / "w.npz", **weights)
    loaded = compile_("--weights", str(tmp_path / "w.npz"))
    for tensor in loaded.graph.initializer:
        assert np.array_equal(onnx.numpy_helper.to_array(tensor), weights[tensor.name])


UNSUPPORTED = """network probs {
  input image: 3 x 8 x 8
  conv 4 3x3 pad 1
  scores: softmax
}
"""


def test_a_layer_unsupported_at_the_opset_is_a_positioned_diagnostic(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    network = cnndsl.load(UNSUPPORTED)
    with pytest.raises(CnnError) as caught:
        cnndsl.to_onnx(network, opset=12)
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code is Code.UNSUPPORTED
    assert (diagnostic.span.line, diagnostic.span.col) == (4, 11)  # the word softmax
    spec = tmp_path / "probs.cnn"
    spec.write_text(UNSUPPORTED)
    target = tmp_path / "probs.onnx"
    code = main(["compile", str(spec), "--to", "onnx", "--opset", "12", "-o", str(target)])
    assert code == 1
    error = capsys.readouterr().err
    assert f"{spec}:4:11: error:" in error and "[unsupported]" in error and "^" in error
    assert not target.exists()
    assert cnndsl.to_onnx(network, opset=13).opset_import[0].version == 13


def test_an_opset_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    code = main(["compile", str(ROOT / "specs" / "lenet5.cnn"), "--to", "onnx", "--opset", "7",
                 "-o", str(tmp_path / "x.onnx")])
    assert code == 2


def test_symbolic_sizes_become_dimension_parameters() -> None:
    network = cnndsl.load("""network open {
  input image: 3 x H x W
  conv 8 3x3 /2 pad 1 -> relu -> channel_maxpool 2
  up: upsample 2x
}
""")
    model = cnndsl.to_onnx(network)
    onnx.checker.check_model(model, full_check=True)
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 3, "H", "W"]
    runner = session(model)
    x = np.random.default_rng(0).standard_normal((2, 3, 10, 14), dtype=np.float32)
    (y,) = runner.run(None, {"image": x})
    assert y.shape == (2, 4, 10, 14)
    with pytest.raises(CnnError, match="fixed input size"):
        cnndsl.to_onnx(cnndsl.load(
            "network ad {\n  input image: 3 x H x W\n  adaptive_avgpool 3x3\n}\n"))


def test_weights_too_large_to_allocate_are_a_positioned_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "huge.cnn"
    spec.write_text("network huge {\n  input image: 3 x 8 x 8\n  conv 100000000000000000 3x3\n}\n")
    code = main(["compile", str(spec), "--to", "onnx", "-o", str(tmp_path / "huge.onnx")])
    assert code == 1
    error = capsys.readouterr().err
    assert f"{spec}:3:3: error: cannot allocate conv1.weight" in error
    assert "[resource-limit]" in error and not (tmp_path / "huge.onnx").exists()
