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


def test_golden_depth() -> None:
    code, text = run(["summary", str(RESNET50), "--depth", "1", "--budget", "1MiB"])
    assert code == 0
    compare_golden("summary_resnet50_depth1.txt", text)


def test_golden_json() -> None:
    code, text = run([*GOLDEN_ARGS, "--format", "json"])
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
                     "macs": 4 * 64 * 64 * 64 * 3 * 49, "macs_per_image": 64 * 64 * 64 * 3 * 49,
                     "activation_bytes": 4 * 64 * 64 * 64 * 2,
                     "receptive_field": {"input": "image", "size": [7, 7], "jump": [2, 2],
                                         "offset": [0, 0], "whole": False, "local_size": None,
                                         "branches": {}}}
    assert data["macs_per_image"] == flops.total_macs(network) == data["macs"] // 4
    assert data["param_bytes"] == 2 * data["params"]  # bf16 weights
    # running statistics in the dtype, plus num_batches_tracked (int64) of each of 53 batch norms
    assert data["buffer_bytes"] == 2 * 53_120 + 8 * 53
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
    assert text.splitlines()[1].split() == ["path", "kind", "output", "params", "MACs/image",
                                            "activation", "rf"]


def test_rich_table_on_a_terminal() -> None:
    pytest.importorskip("rich")
    from cnndsl.cli import summary as module

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    assert module._rich_table(summary(RESNET50, input="3x64x64"), out)
    assert "layer4.2.conv3" in out.getvalue()


def test_shapes_show_the_batch_only_when_one_is_given() -> None:
    code, text = run(["summary", str(RESNET50), "--batch", "8"])
    assert code == 0
    assert text.splitlines()[0] == "resnet50 (image: 8 x 3 x 224 x 224), batch 8, fp32"
    conv1 = next(line for line in text.splitlines() if line.split()[0] == "conv1")
    assert "8 x 64 x 112 x 112" in conv1 and " N " not in text
    code, text = run(["summary", str(RESNET50)])
    assert text.splitlines()[0] == "resnet50 (image: N x 3 x 224 x 224), per image (N = 1), fp32"
    assert "N x 64 x 112 x 112" in text


def test_macs_are_labelled_per_image_and_per_batch() -> None:
    network = check(RESNET50).network
    assert network is not None
    per_image = flops.total_macs(network)
    _, text = run(["summary", str(RESNET50), "--batch", "8"])
    totals = next(line for line in text.splitlines() if "MACs per image" in line)
    assert f"({per_image:,})" in totals and f"per batch of 8 32.7 G ({8 * per_image:,})" in totals
    conv1 = next(line for line in text.splitlines() if line.split()[0] == "conv1")
    assert "118 M" in conv1  # the table is per image, like expect macs


def test_parameter_and_buffer_bytes_follow_the_dtype() -> None:
    full = summary(RESNET50, input="3x64x64")
    half = summary(RESNET50, input="3x64x64", dtype="fp16")
    assert full.param_bytes == 4 * full.params and half.param_bytes == 2 * half.params
    assert full.buffer_bytes == 4 * full.buffers + 8 * 53  # and num_batches_tracked (int64)
    assert "97.5 MiB at 32 bits; buffers 53,120: 208 KiB" in full.text()


def test_depth_folds_blocks_into_subtotals() -> None:
    result = summary(RESNET50, input="3x64x64", batch=2)
    one = result.layers_at(1)
    assert [row.path for row in one] == ["image", "conv1", "bn1", "relu", "maxpool", "layer1",
                                         "layer2", "layer3", "layer4", "avgpool", "flatten1",
                                         "fc"]
    blocks = {block.path: block for block in result.blocks}
    assert blocks["layer2"].block == "4 x bottleneck" and blocks["layer2.0"].block == "bottleneck"
    assert sum(row.params for row in one) == result.params
    assert sum(row.macs for row in one) == result.macs
    assert sum(row.macs_per_image for row in result.layers_at(2)) == result.macs_per_image
    assert sum(r.activation_bytes for r in one) == sum(r.activation_bytes for r in result.layers)
    layer4 = blocks["layer4"]
    assert layer4.receptive_field is not None and layer4.receptive_field.size == (427, 427)
    code, text = run(["summary", str(RESNET50), "--depth", "1"])
    assert code == 0
    row = next(line for line in text.splitlines() if line.split()[0] == "layer4")
    assert "3 x bottleneck (32 layers)" in row and row.split()[-1] == "427"
    assert "layer4.0.conv1" not in text
    code, _ = run(["summary", str(RESNET50), "--depth", "0"])
    assert code == 2


def test_a_budget_too_small_says_it_does_not_fit() -> None:
    code, text = run(["summary", str(RESNET50), "--budget", "1MiB"])
    assert code == 0
    line = text.splitlines()[-1]
    assert line == ("  budget 1 MiB: does not fit: one sample needs 107 MiB for inference, "
                    "256 MiB for training")
    assert "largest batch 0" not in text
    code, text = run(["summary", str(RESNET50), "--budget", "200MiB"])
    assert text.splitlines()[-1].startswith("  budget 200 MiB: largest batch ")
    assert text.splitlines()[-1].endswith("training does not fit (one sample needs 256 MiB)")
    code, text = run(["summary", str(RESNET50), "--budget", "1MiB", "--format", "json"])
    budget = json.loads(text)["budget"]
    assert budget["inference_batch"] == 0 and budget["inference_fits"] is False


def test_format_json_and_the_json_alias_agree() -> None:
    _, alias = run(["summary", str(RESNET50), "--json"])
    _, formatted = run(["summary", str(RESNET50), "--format", "json"])
    assert alias == formatted
    data = json.loads(formatted)
    assert {"macs_per_image", "param_bytes", "buffer_bytes", "blocks"} <= data.keys()
    assert data["blocks"][0] == {
        "path": "layer1", "block": "3 x bottleneck", "depth": 1, "layers": 32,
        "params": 215_808, "macs": data["blocks"][0]["macs_per_image"],
        "macs_per_image": sum(r["macs_per_image"] for r in data["layers"]
                              if r["path"].startswith("layer1.")),
        "activation_bytes": sum(r["activation_bytes"] for r in data["layers"]
                                if r["path"].startswith("layer1."))}
