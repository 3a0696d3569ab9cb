"""The summary table and JSON, the CLI, and the golden files for resnet50.cnn.

Regenerate the golden files after an intended change with
``CNNDSL_REGENERATE_GOLDEN=1 pytest tests/test_analysis_summary.py`` and review the diff.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from cnndsl import check, cli
from cnndsl.analysis import flops, memory
from cnndsl.analysis.summary import summary

ROOT = Path(__file__).resolve().parent.parent
RESNET50 = ROOT / "specs" / "resnet50.cnn"
GOLDEN = Path(__file__).resolve().parent / "golden"
GOLDEN_ARGS = ["summary", str(RESNET50), "--batch", "8", "--budget", "16GiB"]


def run(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = cli.main(args, out=out)
    return code, out.getvalue()


def compare_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CNNDSL_REGENERATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_golden_text() -> None:
    code, text = run(GOLDEN_ARGS)
    assert code == 0
    compare_golden("summary_resnet50.txt", text.replace(str(RESNET50), "specs/resnet50.cnn"))


def test_golden_json() -> None:
    code, text = run([*GOLDEN_ARGS, "--json"])
    assert code == 0
    compare_golden("summary_resnet50.json", text)


def test_json_totals_agree_with_the_analyses() -> None:
    code, text = run(["summary", str(RESNET50), "--batch", "4", "--dtype", "bf16",
                      "--optimizer", "adam", "--input", "3x128x128", "--json"])
    assert code == 0
    data = json.loads(text)
    network = check(RESNET50, input="3x128x128").network
    assert network is not None
    assert data["params"] == network.total_params == 25_557_032
    assert data["trainable_params"] == network.trainable_params
    assert data["buffers"] == 53_120
    assert data["macs"] == flops.total_macs(network, 4) == sum(r["macs"] for r in data["layers"])
    assert data["flops"] == 2 * data["macs"]
    assert data["training_peak_bytes"] == memory.peak_bytes(network, "training", 4, "bf16",
                                                            "adam")
    assert data["inference_peak_bytes"] == memory.peak_bytes(network, "inference", 4, "bf16")
    assert data["input"] == {"image": "N x 3 x 128 x 128"}
    first = data["layers"][1]
    assert first == {"path": "conv1", "kind": "conv", "output": [64, 64, 64], "params": 9408,
                     "macs": 4 * 64 * 64 * 64 * 3 * 49, "activation_bytes": 4 * 64 * 64 * 64 * 2}
    assert len(data["layers"]) == len(network.nodes)
    assert "budget" not in data


def test_views_and_in_place_layers_allocate_nothing() -> None:
    result = summary(RESNET50, batch=2, input="3x64x64")
    rows = {row.path: row for row in result.layers}
    assert rows["flatten1"].activation_bytes == 0
    assert rows["relu"].activation_bytes == 0  # in place after bn1
    assert rows["bn1"].activation_bytes == 2 * 64 * 32 * 32 * 4


def test_budget_answers_match_the_planner() -> None:
    result = summary(RESNET50, input="3x64x64", budget="1GiB")
    assert result.budget is not None
    network = check(RESNET50, input="3x64x64").network
    assert result.budget.training_batch == memory.largest_batch(network, "training", 2**30)
    assert result.budget.inference_batch > result.budget.training_batch > 0


def test_symbolic_input_is_a_usage_error(tmp_path: Path) -> None:
    spec = tmp_path / "open.cnn"
    spec.write_text("network t {\n input x: 3 x H x W\n conv 4 3x3\n}\n", encoding="utf-8")
    code, _ = run(["summary", str(spec)])
    assert code == 2
    code, text = run(["summary", str(spec), "--input", "H=16,W=16"])
    assert code == 0 and "conv1" in text


def test_text_without_a_terminal_is_plain() -> None:
    text = summary(RESNET50, input="3x64x64").text()
    assert "\x1b" not in text
    assert text.splitlines()[1].split() == ["path", "kind", "output", "params", "MACs",
                                            "activation"]


def test_rich_table_on_a_terminal() -> None:
    pytest.importorskip("rich")
    from cnndsl.cli import summary as module

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    assert module._rich_table(summary(RESNET50, input="3x64x64"), out)
    assert "layer4.2.conv3" in out.getvalue()
