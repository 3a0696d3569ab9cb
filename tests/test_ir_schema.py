"""The exported JSON Schema of the IR (docs/ir.schema.json) matches the IR models."""

from __future__ import annotations

import json
from pathlib import Path

import cnndsl
from cnndsl import ir

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "ir.schema.json"


def test_exported_schema_is_current() -> None:
    exported = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert exported == ir.json_schema(), "regenerate: cnndsl ir --schema > docs/ir.schema.json"


def test_ir_json_round_trips_through_the_models() -> None:
    network = cnndsl.load(Path(__file__).resolve().parent.parent / "specs" / "resnet50.cnn")
    document = json.loads(network.model_dump_json())
    assert document["nodes"][1]["name"] == "conv1"
    assert document["nodes"][1]["shape"] == [64, 112, 112]
    again = ir.Network.model_validate(document)
    assert [n.name for n in again.nodes] == [n.name for n in network.nodes]
    assert again.total_params == network.total_params
