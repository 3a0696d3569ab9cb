"""Memory estimates against PyTorch's own accounting, the planner, and the expect lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from spec_helpers import SPECS, small_network

from cnndsl import check, ir
from cnndsl.analysis import memory


def network_of(text: str):
    result = check(text)
    assert result.network is not None, result.diagnostics
    return result.network


def inputs_of(network, batch: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    return [torch.randn(batch, *network.node(name).shape, generator=generator)
            for name in network.inputs]


# -- measured ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_estimates_match_measurement(path: Path) -> None:
    pytest.importorskip("torch")
    from cnndsl.analysis.measure import measure
    from cnndsl.backends.torch.runtime import to_torch

    network = small_network(path)
    batch = 2
    inputs = inputs_of(network, batch)
    inference = measure(to_torch(network), *inputs, kind="inference")
    training = measure(to_torch(network), *inputs, kind="training")
    estimate = memory.estimate(network, "training", batch)
    assert memory.peak_bytes(network, "inference", batch) == pytest.approx(
        inference.peak, rel=0.10)
    assert estimate.peak == pytest.approx(training.peak, rel=0.05)
    assert estimate.saved == pytest.approx(training.saved, rel=0.01)


@pytest.mark.parametrize(("dtype", "optimizer"), [("bf16", "adam"), ("fp32", "adamw")])
def test_dtypes_and_optimizers_match_measurement(dtype: str, optimizer: str) -> None:
    pytest.importorskip("torch")
    from cnndsl.analysis.measure import measure
    from cnndsl.backends.torch.runtime import to_torch

    network = small_network(Path(SPECS[0]).with_name("resnet18.cnn"))
    inputs = inputs_of(network, 4)
    measured = measure(to_torch(network), *inputs, kind="training", dtype=dtype,
                       optimizer=optimizer)
    estimated = memory.peak_bytes(network, "training", 4, dtype, optimizer)
    assert estimated == pytest.approx(measured.peak, rel=0.05)


def _hand_written() -> tuple[ir.Network, Any]:
    """A small network as a spec and as a module written by hand (no cnndsl backend)."""
    from torch import nn

    network = network_of(
        "network t {\n input x: 3 x 32 x 32\n conv 8 3x3 pad 1 -> bn -> relu -> maxpool 2x2"
        " -> flatten -> dropout 0.5 -> linear 10\n}\n"
    )
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                          nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(),
                          nn.Linear(8 * 16 * 16, 10))
    return network, model


def test_harness_on_a_hand_written_module() -> None:
    """The harness itself, on a module written by hand (no cnndsl backend involved)."""
    torch = pytest.importorskip("torch")
    from cnndsl.analysis.measure import measure

    network, model = _hand_written()
    x = torch.randn(4, 3, 32, 32)
    inference = measure(model, x, kind="inference")
    training = measure(model, x, kind="training", optimizer="adam")
    assert memory.peak_bytes(network, "inference", 4) == inference.peak
    estimate = memory.estimate(network, "training", 4, optimizer="adam")
    assert estimate.peak == pytest.approx(training.peak, rel=0.01)
    # saved: conv input, bn input + stats, relu output (= maxpool input), indices, noise,
    # linear input
    assert estimate.saved == training.saved


@pytest.mark.parametrize(("dtype", "optimizer"), [("fp32", "momentum"), ("mixed", "adam")])
def test_harness_agrees_for_momentum_and_mixed_precision(dtype: str, optimizer: str) -> None:
    torch = pytest.importorskip("torch")
    from cnndsl.analysis.measure import measure

    network, model = _hand_written()
    measured = measure(model, torch.randn(4, 3, 32, 32), kind="training", dtype=dtype,
                       optimizer=optimizer)
    estimate = memory.estimate(network, "training", 4, dtype, optimizer)
    assert estimate.peak == pytest.approx(measured.peak, rel=0.01)


# -- the planner ------------------------------------------------------------------------------


def test_planner_answer_fits_when_measured() -> None:
    pytest.importorskip("torch")
    from cnndsl.analysis.measure import measure
    from cnndsl.backends.torch.runtime import to_torch

    network = small_network(Path(SPECS[0]).with_name("resnet18.cnn"))
    budget = memory.peak_bytes(network, "training", 5) + 1_000_000  # between 5 and 6
    batch = memory.largest_batch(network, "training", budget)
    assert batch >= 5
    assert memory.peak_bytes(network, "training", batch + 1) > budget
    measured = measure(to_torch(network), *inputs_of(network, batch), kind="training")
    assert measured.peak <= budget
    inference_batch = memory.largest_batch(network, "inference", budget)
    assert memory.peak_bytes(network, "inference", inference_batch) <= budget
    assert memory.peak_bytes(network, "inference", inference_batch + 1) > budget


def test_planner_edges() -> None:
    network = network_of("network t {\n input x: 3 x 32 x 32\n conv 8 3x3 pad 1 -> relu\n}\n")
    assert memory.largest_batch(network, "inference", 10) == 0
    one = memory.peak_bytes(network, "inference", 1)
    assert memory.largest_batch(network, "inference", one) == 1
    assert memory.largest_batch(network, "inference", 10**15, limit=1000) == 1000


# -- the model's properties -------------------------------------------------------------------


def test_parts_and_dtypes() -> None:
    network = small_network(Path(SPECS[0]).with_name("resnet50.cnn"))
    params = network.total_params
    sgd = memory.estimate(network, "training", 2)
    adam = memory.estimate(network, "training", 2, optimizer="adam")
    assert sgd.weights == 4 * params and sgd.optimizer_state == 0
    parameter_tensors = sum(len(memory.parameter_tensors(n)) for n in network.nodes)
    assert adam.optimizer_state == 8 * params + 4 * parameter_tensors
    half = memory.estimate(network, "training", 2, dtype="bf16")
    mixed = memory.estimate(network, "training", 2, dtype="mixed")
    assert half.weights == 2 * params and mixed.weights == 4 * params
    assert half.peak < sgd.peak < mixed.peak + sgd.peak
    assert memory.peak_bytes(network, "inference", 4) < memory.peak_bytes(network, "training", 4)
    assert memory.peak_bytes(network, "training", 8) > memory.peak_bytes(network, "training", 4)


def test_cuda_rounds_storages() -> None:
    network = network_of("network t {\n input x: 3 x 5 x 5\n conv 3 1x1\n}\n")
    cpu = memory.peak_bytes(network, "inference", 1)
    cuda = memory.peak_bytes(network, "inference", 1, device="cuda")
    assert cuda % 512 == 0 and cuda > cpu


def test_bad_arguments() -> None:
    network = network_of("network t {\n input x: 3 x 8 x 8\n conv 3 1x1\n}\n")
    with pytest.raises(ValueError, match="dtype"):
        memory.peak_bytes(network, "training", dtype="fp8")
    with pytest.raises(ValueError, match="optimizer"):
        memory.peak_bytes(network, "training", optimizer="lion")
    with pytest.raises(ValueError, match="batch"):
        memory.peak_bytes(network, "training", batch=0)
    with pytest.raises(ValueError, match="kind"):
        memory.peak_bytes(network, "evaluation")


def test_bytes_text() -> None:
    assert memory.format_bytes(512) == "512 B"
    assert memory.format_bytes(3 * 2**20) == "3 MiB"
    assert memory.format_bytes(int(1.5 * 2**30)) == "1.5 GiB"
    assert memory.parse_bytes("16GiB") == 16 * 2**30
    assert memory.parse_bytes("512 MB") == 512 * 10**6
    assert memory.parse_bytes("1000") == 1000
    with pytest.raises(ValueError):
        memory.parse_bytes("lots")


def test_expect_lines_use_the_analyses() -> None:
    text = (
        "network t {\n input x: 3 x 32 x 32\n conv 8 3x3 pad 1 -> relu\n"
        " expect macs == 221184\n"
        " expect training memory(batch=32, dtype=bf16) < 16GiB\n"
        " expect inference memory(batch=1) > 1MiB\n}\n"
    )
    result = check(text)
    assert result.network is not None
    outcomes = [(e.text.split()[0], e.ok) for e in result.network.expects]
    assert outcomes == [("macs", True), ("training", True), ("inference", False)]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_timeline_steps_through_the_replay_to_its_peak(path: Path) -> None:
    network = small_network(path)
    for kind in ("inference", "training"):
        events = memory.timeline(network, kind, 2, "fp32", "adam")
        assert max(e.peak for e in events) == memory.peak_bytes(network, kind, 2, "fp32", "adam")
        assert all(e.peak >= e.live for e in events)
        forward = [e.node for e in events if e.phase == "forward"]
        assert forward == [node.name for node in network.nodes]
        if kind == "training":
            backward = [e.node for e in events if e.phase == "backward"]
            assert backward == [node.name for node in reversed(network.nodes)]
            assert events[0].phase == "setup" and events[-1].phase == "step"
