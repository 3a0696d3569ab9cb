"""The op registry's conformance suite: one test per kind, generated from its ``example``.

Each kind's example spec must check and contain the kind, and then agree with PyTorch and
onnxruntime on everything the registry states about it: shapes of every tensor (torch),
parameter and buffer counts (torch's ``state_dict``), the initialisation its state describes
(torch module and ONNX random weights), the printer's round trip, outputs of torch and ONNX at
the default and the lowest supported opset, the memory replay against ``MemTracker`` and MACs
against ``FlopCounterMode``. The completeness tests check that every kind states every fact
and every backend has a handler for it, and that deleting any one entry is noticed.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import cnndsl
from cnndsl import ir
from cnndsl.ops import REGISTRY
from cnndsl.ops import registry as completeness

KINDS = list(REGISTRY)


def example_network(kind: str) -> ir.Network:
    """The kind's example, wrapped as a network."""
    body = "\n".join(f"  {line}" for line in REGISTRY[kind].example.splitlines())
    result = cnndsl.check(f"network example_{kind} {{\n{body}\n}}\n", file=f"<{kind}>")
    assert result.ok and result.network is not None, [d.message for d in result.diagnostics]
    return result.network


def _inputs(network: ir.Network, batch: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, *network.node(name).shape), dtype=np.float32)
            for name in network.inputs]


def _outputs(result: object, network: ir.Network) -> dict[str, np.ndarray]:
    if isinstance(result, dict):
        return {name: value.detach().numpy() for name, value in result.items()}
    (name,) = network.outputs
    return {name: result.detach().numpy()}  # type: ignore[attr-defined]


# -- completeness ------------------------------------------------------------------------------


def test_every_kind_states_every_fact_and_every_backend_handles_it() -> None:
    problems = completeness.missing(completeness.definitions(), completeness.handler_tables())
    assert problems == []


@pytest.mark.parametrize("fact", [*completeness.FACTS])
def test_deleting_a_fact_from_a_copy_is_noticed(fact: str) -> None:
    registry = completeness.definitions()
    for kind in ("batchnorm", "add"):
        copy = dict(registry)
        copy[kind] = dataclasses.replace(registry[kind],
                                         facts={**registry[kind].facts, fact: None})
        assert completeness.missing(copy, completeness.handler_tables()) == [
            f"kind {kind!r}: no {fact} (cnndsl/ops, class {REGISTRY[kind].__name__})"]
    assert completeness.missing(registry, completeness.handler_tables()) == []  # a copy


def test_deleting_a_handler_from_a_copy_is_noticed() -> None:
    registry = completeness.definitions()
    tables = completeness.handler_tables()
    for table, entries in tables.items():
        for kind in list(entries)[:3]:
            if completeness.OPTIONAL.get(table, lambda d: True)(registry[kind]) is False:
                continue
            copy = {**tables, table: {k: v for k, v in entries.items() if k != kind}}
            assert completeness.missing(registry, copy) == [
                f"kind {kind!r}: missing from {table}"], (table, kind)
    assert completeness.missing(registry, tables) == []


def test_an_unknown_kind_in_a_table_and_a_kind_without_words_are_noticed() -> None:
    registry = completeness.definitions()
    tables = completeness.handler_tables()
    name = next(iter(tables))
    extra = {**tables, name: {**tables[name], "warp": None}}
    assert completeness.missing(registry, extra) == [
        f"table {name} has an entry for unknown kind 'warp'"]
    wordless = {**registry, "lrn": dataclasses.replace(registry["lrn"], words=())}
    assert completeness.missing(wordless, tables) == [
        "kind 'lrn': no words (cnndsl/ops, class LRN)"]


def test_a_kind_without_a_lowering_is_a_positioned_diagnostic(monkeypatch) -> None:
    from cnndsl.backends import onnx as onnx_backend
    from cnndsl.diagnostics import CnnError, Code

    network = example_network("lrn")
    monkeypatch.delitem(onnx_backend.LOWERINGS, "lrn")
    with pytest.raises(CnnError) as raised:
        onnx_backend.build_onnx(network)
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.code is Code.UNSUPPORTED and diagnostic.code.id.startswith("E4")
    assert diagnostic.span.line == 3 and "no lowering for lrn" in diagnostic.message


# -- one test per kind -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_example_checks_and_prints_back(kind: str) -> None:
    from cnndsl.transforms.printer import print_spec

    network = example_network(kind)
    assert any(node.kind == kind for node in network.nodes), kind
    again = cnndsl.check(print_spec(network), file="<printed>")
    assert again.ok and again.network is not None, [d.message for d in again.diagnostics]
    printed = again.network
    assert [n.kind for n in printed.nodes] == [n.kind for n in network.nodes]
    assert [n.shape for n in printed.nodes] == [n.shape for n in network.nodes]
    assert [n.params for n in printed.nodes] == [n.params for n in network.nodes]
    # the receptive field names the input and branches: tests/test_transforms_printer.py maps them
    skip = {"name", "inputs", "span", "receptive_field"}
    for old, new in zip(network.nodes, printed.nodes, strict=True):
        assert {f.name: getattr(new, f.name) for f in dataclasses.fields(new)
                if f.name not in skip} == {f.name: getattr(old, f.name)
                                           for f in dataclasses.fields(old)
                                           if f.name not in skip}, old.name


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_state_and_init_agree_with_torch(kind: str) -> None:
    torch = pytest.importorskip("torch")
    from cnndsl.analysis.params import buffers

    network = example_network(kind)
    model = cnndsl.to_torch(network, seed=1)
    state = {k: v.clone() for k, v in model.state_dict().items()}  # before a pass updates it
    tensors = model.trace(*[torch.from_numpy(x) for x in _inputs(network, 2)])
    for node in network.nodes:
        assert tuple(tensors[node.name].shape) == (2, *node.shape), node.name
    for node in network.nodes:
        own = {k[len(node.name) + 1:]: v for k, v in state.items()
               if k.startswith(node.name + ".")}
        expected = node.state()
        assert list(own) == [s.name for s in expected], node.name
        for item in expected:
            tensor = own[item.name]
            assert tuple(tensor.shape) == item.shape, (node.name, item.name)
            _assert_initialised(tensor, item)
        module = model.get_submodule(node.name) if expected else None
        if module is not None:
            assert node.params == sum(p.numel() for p in module.parameters())
            assert buffers(node) == sum(b.numel() for b in module.buffers()
                                        if b.dtype.is_floating_point)
    assert network.total_params == sum(p.numel() for p in model.parameters())


def _assert_initialised(tensor, item) -> None:
    values = tensor.detach().double()
    if item.init in ("ones", "zeros"):
        assert bool((values == (1.0 if item.init == "ones" else 0.0)).all()), item.name
        return
    assert bool(values.isfinite().all()), item.name
    if item.init == "kaiming_normal":
        bound = 3 * math.sqrt(2.0 / item.fan) * 2  # within six standard deviations
    else:
        bound = 1 / math.sqrt(item.fan)
    assert float(values.abs().max()) <= bound * (1 + 1e-6), item.name
    if values.numel() >= 16:
        assert float(values.std()) > 0.1 * bound / 3, item.name  # not left as zeros


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_random_weights_follow_the_state(kind: str) -> None:
    from cnndsl.backends import onnx as onnx_backend

    network = example_network(kind)
    weights = onnx_backend.random_weights(network, seed=2)
    expected = {f"{node.name}.{s.name}": s for node in network.nodes for s in node.state()
                if s.dtype == "float32"}
    assert list(weights) == list(expected)
    for key, item in expected.items():
        array = weights[key]
        assert array.shape == item.shape and array.dtype == np.float32, key
        if item.init in ("ones", "zeros"):
            assert (array == (1.0 if item.init == "ones" else 0.0)).all(), key
        else:
            bound = (math.sqrt(6.0 / item.fan) if item.init == "kaiming_normal"
                     else 1 / math.sqrt(item.fan))
            assert np.abs(array).max() <= bound and array.std() > 0.1 * bound, key


@pytest.mark.parametrize("kind", KINDS)
def test_torch_and_onnx_agree_at_default_and_lowest_opset(kind: str) -> None:
    torch = pytest.importorskip("torch")
    ort = pytest.importorskip("onnxruntime")
    from cnndsl.backends import onnx as onnx_backend
    from cnndsl.backends.onnx import wire

    network = example_network(kind)
    model = cnndsl.to_torch(network, seed=3).eval()
    with torch.no_grad():  # statistics and scales that are not 1 and 0 make the test real
        for module in model.modules():
            for name in ("running_mean", "running_var", "weight", "bias"):
                tensor = getattr(module, name, None)
                if (isinstance(tensor, torch.Tensor) and name != "weight") or (
                        name == "weight" and isinstance(module, torch.nn.BatchNorm2d)):
                    tensor.copy_(torch.rand(tensor.shape, generator=torch.Generator()
                                            .manual_seed(5)) + 0.5)
    weights = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    inputs = _inputs(network, 3, seed=4)
    with torch.no_grad():
        expected = _outputs(model(*[torch.from_numpy(x) for x in inputs]), network)
    for opset in (None, onnx_backend.MIN_OPSET):
        built = onnx_backend.build_onnx(network, opset=opset, weights=weights)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        runner = ort.InferenceSession(wire.to_bytes(built), options,
                                      providers=["CPUExecutionProvider"])
        feeds = dict(zip(network.inputs, inputs, strict=True))
        actual = dict(zip(network.outputs, runner.run(list(network.outputs), feeds),
                          strict=True))
        for name, value in expected.items():
            assert actual[name].shape == value.shape, (opset, name)
            np.testing.assert_allclose(actual[name], value, rtol=1e-4, atol=1e-5,
                                       err_msg=f"opset {opset}, output {name}")


@pytest.mark.parametrize("kind", KINDS)
def test_memory_replay_agrees_with_mem_tracker(kind: str) -> None:
    torch = pytest.importorskip("torch")
    from cnndsl.analysis import memory
    from cnndsl.analysis.measure import measure

    network = example_network(kind)
    batch = 4
    inputs = [torch.from_numpy(x) for x in _inputs(network, batch)]
    inference = measure(cnndsl.to_torch(network), *inputs, kind="inference")
    assert memory.peak_bytes(network, "inference", batch) == inference.peak
    assert network.total_params, "the example needs parameters to train"
    training = measure(cnndsl.to_torch(network), *inputs, kind="training")
    estimate = memory.estimate(network, "training", batch)
    assert estimate.saved == training.saved
    # Exact but for one scalar: when the peak falls in the backward of a layer with
    # parameters, MemTracker sees 4 bytes more than the replay models (not yet explained).
    assert 0 <= training.peak - estimate.peak <= 4


@pytest.mark.parametrize("kind", KINDS)
def test_macs_agree_with_flop_counter(kind: str) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from cnndsl.analysis import flops

    network = example_network(kind)
    model = cnndsl.to_torch(network).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*[torch.from_numpy(x) for x in _inputs(network, 2)])
    assert counter.get_total_flops() == 2 * flops.total_macs(network, batch=2)


def test_groupnorm_groups_must_divide_the_channels() -> None:
    result = cnndsl.check("network t {\n  input x: 6 x 4 x 4\n  groupnorm 4\n}\n")
    (diagnostic,) = result.diagnostics
    assert diagnostic.code.slug == "channel-mismatch" and diagnostic.span.line == 3
    assert "4 groups do not divide 6 channels" in diagnostic.message
    network = example_network("groupnorm")
    (norm,) = [n for n in network.nodes if n.kind == "groupnorm"]
    assert norm.params == 12 and (norm.groups, norm.channels, norm.eps) == (3, 6, 0.001)
