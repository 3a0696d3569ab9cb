"""MACs: hand-computed cases and agreement with torch's FlopCounterMode / 2 for every spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_helpers import SPECS, small_network

from cnndsl import check
from cnndsl.analysis import flops


def network_of(text: str):
    result = check(text)
    assert result.network is not None, result.diagnostics
    return result.network


def test_conv_macs_by_hand() -> None:
    network = network_of("network t {\n input x: 3 x 8 x 8\n conv 4 3x3 pad 1\n}\n")
    assert flops.total_macs(network) == 4 * 3 * 3 * 3 * 8 * 8
    assert flops.total_flops(network, batch=2) == 2 * 2 * 4 * 3 * 9 * 64


def test_strided_grouped_conv_macs_by_hand() -> None:
    network = network_of("network t {\n input x: 4 x 9 x 9\n conv 8 3x3 /2 groups=2\n}\n")
    # output 8 x 4 x 4; each output sums over in/groups = 2 channels x 3 x 3
    assert flops.total_macs(network) == 8 * 4 * 4 * 2 * 9


def test_depthwise_conv_macs_by_hand() -> None:
    network = network_of("network t {\n input x: 6 x 10 x 10\n dwconv 3x3 pad 1\n}\n")
    assert flops.total_macs(network) == 6 * 10 * 10 * 9


def test_transposed_conv_counts_input_pixels() -> None:
    network = network_of("network t {\n input x: 3 x 8 x 8\n deconv 5 4x4 /2 pad 1\n}\n")
    node = network.nodes[-1]
    assert node.shape == (5, 16, 16)
    # every input pixel scatters a 4 x 4 patch into each of 5 maps: 3 * 5 * 16 * 8 * 8
    assert flops.total_macs(network) == 3 * 5 * 16 * 64


def test_linear_and_uncounted_kinds() -> None:
    network = network_of(
        "network t {\n input x: 2 x 4 x 4\n bn -> relu -> maxpool 2x2 -> flatten"
        " -> linear 10 -> softmax\n}\n"
    )
    per_node = flops.macs_by_node(network)
    assert per_node[network.nodes[-2].name] == 8 * 10
    assert sum(per_node.values()) == 80


def test_symbolic_sizes_need_binding() -> None:
    network = network_of("network t {\n input x: 3 x H x W\n conv 4 3x3\n}\n")
    with pytest.raises(ValueError, match="--input"):
        flops.total_macs(network)


def test_torch_counter_on_hand_cases() -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    cases = [
        (torch.nn.ConvTranspose2d(3, 6, 4, stride=2, padding=1, groups=3), (3, 8, 8),
         "deconv 6 4x4 /2 pad 1 groups=3"),
        (torch.nn.Conv2d(4, 8, 3, stride=2, groups=2), (4, 9, 9), "conv 8 3x3 /2 groups=2"),
    ]
    for module, shape, layer in cases:
        c, h, w = shape
        network = network_of(f"network t {{\n input x: {c} x {h} x {w}\n {layer}\n}}\n")
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            module(torch.zeros(1, *shape))
        assert counter.get_total_flops() == flops.total_flops(network)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_macs_match_flop_counter(path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from cnndsl.backends.torch.runtime import to_torch

    network = small_network(path)
    model = to_torch(network).eval()
    inputs = [torch.zeros(2, *network.node(name).shape) for name in network.inputs]
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*inputs)
    measured = counter.get_total_flops() / 2
    assert measured > 0
    assert abs(flops.total_macs(network, batch=2) - measured) <= 0.005 * measured
