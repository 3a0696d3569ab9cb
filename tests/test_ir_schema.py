"""The exported JSON Schema of the IR (docs/ir.schema.json) matches the IR models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cnndsl
from cnndsl import ir

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "ir.schema.json"


def test_exported_schema_is_current() -> None:
    exported = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert exported == ir.json_schema(), "regenerate: cnndsl ir --schema > docs/ir.schema.json"


def test_ir_json_round_trips_through_the_models() -> None:
    network = cnndsl.load(Path(__file__).resolve().parent.parent / "specs" / "resnet50.cnn")
    document = json.loads(ir.to_json(network))
    assert document["nodes"][1]["name"] == "conv1"
    assert document["nodes"][1]["shape"] == [64, 112, 112]
    assert document["nodes"][1]["receptive_field"] == {
        "input": "image", "size": [7, 7], "jump": [2, 2], "offset": [0, 0], "whole": False,
        "local_size": None, "branches": {}}
    layer4 = next(n for n in document["nodes"] if n["name"] == "layer4.0.add1")
    assert layer4["receptive_field"]["branches"] == {"layer4.0.bn3": [299, 299],
                                                     "layer4.0.downsample.1": [267, 267]}
    again = ir.from_json(document)
    assert [n.name for n in again.nodes] == [n.name for n in network.nodes]
    assert again.total_params == network.total_params
    assert again == network  # dataclasses compare field by field, spans and shapes included


def test_invalid_ir_json_is_a_value_error() -> None:
    network = cnndsl.load(Path(__file__).resolve().parent.parent / "specs" / "lenet5.cnn")
    document = json.loads(ir.to_json(network))
    document["nodes"][1]["kernel"] = "five"
    with pytest.raises(ValueError, match="kernel"):
        ir.from_json(document)
    document = json.loads(ir.to_json(network))
    document["nodes"][1]["colour"] = "red"  # extra fields are refused, as the schema says
    with pytest.raises(ValueError, match="colour"):
        ir.from_json(json.dumps(document))
