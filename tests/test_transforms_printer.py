"""The IR -> .cnn printer: printing and re-reading gives the same network."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cnndsl import ir
from cnndsl.compiler import check, load
from cnndsl.transforms.graph import infer_shapes
from cnndsl.transforms.printer import print_spec, printed_names

SPECS = sorted((Path(__file__).parent.parent / "specs").glob("*.cnn"))
IGNORED = {"name", "inputs", "span", "receptive_field"}  # fields: compared apart


def _reread(network: ir.Network) -> ir.Network:
    result = check(print_spec(network))
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.network is not None
    return result.network


def _fields(node: object) -> dict[str, object]:
    return {f.name: getattr(node, f.name) for f in dataclasses.fields(node)  # type: ignore[arg-type]
            if f.name not in IGNORED}


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_round_trip_keeps_nodes_shapes_and_params(spec: Path) -> None:
    network = load(spec)
    again = _reread(network)
    names = printed_names(network, again)
    assert again.total_params == network.total_params
    assert [n.shape for n in again.nodes] == [n.shape for n in network.nodes]
    for old, new in zip(network.nodes, again.nodes, strict=True):
        # Every attribute survives; inputs point at the same nodes under their new names.
        assert _fields(new) == _fields(old), old.name
        assert new.inputs == [names[i] for i in old.inputs], old.name
        # the receptive field survives too; a merge names its branches by their new names
        assert old.receptive_field is not None and new.receptive_field is not None
        renamed = {names[b]: size for b, size in old.receptive_field.branches.items()}
        assert new.receptive_field == dataclasses.replace(old.receptive_field,
                                                          branches=renamed), old.name
    assert list(again.outputs.values()) == [names[t] for t in network.outputs.values()]
    assert all(e.ok for e in again.expects) and again.expects


def test_output_names_survive_and_labels_avoid_layer_words() -> None:
    network = load(Path(__file__).parent.parent / "specs" / "classify_localize.cnn")
    text = print_spec(network)
    assert "output logits, box\n" in text
    # resnet's `relu: relu` must not print as a label `relu` (it would shadow the layer word).
    assert "\n  relu:" not in text and "\n  relu_:" in text


def test_symbolic_input_prints_its_names() -> None:
    text = "network s {\n  input image: 3 x H x W\n  conv 8 3x3 pad 1 -> relu -> gap\n}\n"
    network = load(text)
    printed = print_spec(network)
    assert "input image: 3 x H x W" in printed
    resized = check(printed, input="H=20,W=24").network
    assert resized is not None
    assert list(resized.output_shapes().values()) == [(8, 1, 1)]


def test_infer_shapes_at_another_size_updates_detect_heads() -> None:
    spec = Path(__file__).parent.parent / "specs" / "yolo_tiny.cnn"
    network = load(spec)
    small = infer_shapes(network, (3, 128, 128))
    assert small.output_shapes() == {"head32": (255, 4, 4), "head16": (255, 8, 8)}
    assert all(n.image_size == (128, 128) for n in small.nodes if isinstance(n, ir.DetectHead))
    assert network.output_shapes()["head32"] == (255, 13, 13)  # the original is untouched
