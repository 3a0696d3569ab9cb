"""Completion from the text before the cursor and the names of the last good parse."""

from __future__ import annotations

from lsp_helpers import RESNET50, open_text, position

from cnndsl import layers
from cnndsl.lsp.completion import completion
from cnndsl.lsp.workspace import Workspace

TEXT = RESNET50.read_text()


def _labels(line: str, after: str = "  bn1: bn\n", snippets: bool = False) -> list[str]:
    """Completion labels with ``line`` typed after ``after`` in resnet50.cnn, cursor at its end."""
    text = TEXT.replace(after, after + line + "\n", 1)
    space = Workspace()
    open_text(space, RESNET50)  # the editor opened the spec, then typed
    analysis = open_text(space, RESNET50, text)
    spot = position(text, after + line, len(after + line))
    return [item.label for item in completion(analysis, spot, snippets).items]


def test_after_a_convolution_its_remaining_parameters() -> None:
    labels = _labels("  conv 64 3x3 ")
    assert labels == ["stride=", "padding=", "dilation=", "groups=", "bias=", "pad"]
    assert _labels("  conv 64 3x3 /2 groups=2 ") == ["padding=", "dilation=", "bias=", "pad"]
    assert "kernel=" in _labels("  conv 64 ")
    assert "dil" not in _labels("  conv 64 3x3 dil")  # a partial word still completes
    assert "dilation=" in _labels("  conv 64 3x3 dil")


def test_flags_and_values() -> None:
    assert {"bilinear", "nearest", "mode="} <= set(_labels("  upsample 2x "))
    assert "mode=" not in _labels("  upsample 2x bilinear ")
    assert _labels("  conv 64 3x3 padding=")[:2] == ["same", "valid"]
    assert {"true", "false"} <= set(_labels("  maxpool 3x3 ceil="))
    assert "classes" in _labels("  conv 64 3x3 groups=")


def test_at_the_start_of_a_statement_words_blocks_tensors_keywords() -> None:
    labels = _labels("  ")
    assert set(layers.LAYERS) <= set(labels)
    assert {"residual", "concat", "add", "basic", "bottleneck", "image", "conv1", "bn1",
            "input", "output", "expect", "const"} <= set(labels)
    assert "relu" in labels and "maxpool" in labels
    after_arrow = _labels("  x: conv 8 1x1 -> ")
    assert "bottleneck" in after_arrow and "input" not in after_arrow
    assert "layer1" not in after_arrow  # labelled below the cursor


def test_snippets_give_positional_parameters() -> None:
    text = TEXT.replace("  bn1: bn\n", "  bn1: bn\n  \n", 1)
    analysis = open_text(Workspace(), RESNET50, text)
    items = completion(analysis, position(text, "  bn1: bn\n  \n", 12), snippets=True).items
    conv = next(item for item in items if item.label == "conv")
    assert conv.insert_text == "conv ${1:filters} ${2:kernel}"
    assert next(i for i in items if i.label == "bottleneck").insert_text == "bottleneck($1)"


def test_inside_calls_tensors_and_block_parameters() -> None:
    assert set(_labels("  x: add(")) >= {"image", "conv1", "bn1"}
    assert "stride = " in _labels("  y: bottleneck(64, ")
    assert "width = " not in _labels("  y: bottleneck(width = 64, ")


def test_outside_bodies_keywords_and_in_comments_nothing() -> None:
    assert _labels("", after="import \"blocks/resnet.cnn\"\n") == [
        "network", "block", "import", "const"]
    assert _labels("  conv 64 # a comment ") == []


def test_import_paths_and_expect_subjects() -> None:
    labels = _labels('import "', after='import "blocks/resnet.cnn"\n')
    assert "blocks/" in labels and "resnet18.cnn" in labels and "resnet50.cnn" not in labels
    assert "resnet.cnn" in _labels('import "blocks/', after='import "blocks/resnet.cnn"\n')
    subjects = _labels("  expect ", after="  fc: linear classes\n")
    assert {"params", "macs", "fc", "conv1"} <= set(subjects)
