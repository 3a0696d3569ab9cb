"""Pairing checkpoint tensors with a network's: names, order, renames, reshapes, the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cnndsl
from cnndsl.diagnostics import render_all
from cnndsl.weights import fits, match_weights, network_targets, parse_rename
from cnndsl.weights.match import rewrite_keys, suggest_rename

ROOT = Path(__file__).resolve().parents[1]


def arrays(pairs: list[tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    return {key: np.zeros(shape, np.float32) for key, shape in pairs}


def test_shapes_fit_up_to_trailing_ones() -> None:
    assert fits((10, 512), (10, 512, 1, 1)) and fits((10, 512, 1, 1), (10, 512))
    assert fits((64,), (64, 1, 1))
    assert not fits((512, 10), (10, 512, 1, 1))
    assert not fits((10, 1, 512), (10, 512))


def test_ddp_and_compile_prefixes_are_stripped_and_renames_take_the_longest_prefix() -> None:
    keys, notes = rewrite_keys(["module._orig_mod.a.weight", "module._orig_mod.b.weight"])
    assert list(keys) == ["a.weight", "b.weight"] and len(notes) == 2
    keys, _ = rewrite_keys(["backbone.head.fc.weight", "backbone.conv.weight"],
                           parse_rename(["backbone.=", "backbone.head.=classifier."]))
    assert keys == {"classifier.fc.weight": "backbone.head.fc.weight",
                    "conv.weight": "backbone.conv.weight"}
    keys, notes = rewrite_keys(["module.a.weight", "b.weight"])  # not every key: kept
    assert list(keys) == ["module.a.weight", "b.weight"] and not notes
    with pytest.raises(ValueError, match="OLD=NEW"):
        parse_rename(["backbone."])


def test_by_name_with_a_linear_weight_loaded_into_a_1x1_convolution() -> None:
    targets = [("conv.weight", (8, 3, 3, 3)), ("head.weight", (10, 8, 1, 1)),
               ("head.bias", (10,))]
    source = arrays([("conv.weight", (8, 3, 3, 3)), ("head.weight", (10, 8)), ("head.bias", (10,))])
    source["head.weight"] = np.arange(80, dtype=np.float32).reshape(10, 8)
    match = match_weights(targets, source, by="name")
    assert match.report.ok and match.report.reshaped == 1
    loaded = match.arrays(source, dict(targets))
    assert loaded["head.weight"].shape == (10, 8, 1, 1)
    assert np.array_equal(loaded["head.weight"][:, :, 0, 0], source["head.weight"])


def test_order_follows_the_module_tree_not_the_flat_dict() -> None:
    # A block that owns a parameter (ConvNeXt's layer scale) lists it before its children,
    # though it is applied after them, where the spec has it.
    source = arrays([("stem.weight", (4, 3, 1, 1)), ("blocks.0.gamma", (4, 1, 1)),
                     ("blocks.0.block.0.weight", (4, 1, 7, 7)),
                     ("blocks.0.block.1.weight", (16, 4, 1, 1)),
                     ("blocks.0.block.2.weight", (4, 16, 1, 1)), ("fc.weight", (2, 4))])
    targets = [("stem.weight", (4, 3, 1, 1)), ("b.dw.weight", (4, 1, 7, 7)),
               ("b.pw1.weight", (16, 4, 1, 1)), ("b.pw2.weight", (4, 16, 1, 1)),
               ("b.scale.weight", (4, 1, 1, 1)), ("fc.weight", (2, 4))]
    match = match_weights(targets, source, by="order")
    assert match.report.ok, match.report.details(True)
    assert match.pairs["b.scale.weight"] == "blocks.0.gamma"
    assert match.pairs["b.dw.weight"] == "blocks.0.block.0.weight"


def test_order_reorders_siblings_only_when_the_shapes_force_it() -> None:
    # RegNet registers the projection before the branch it is added to; its first layer has
    # the projection's shapes exactly, so only the layer after it tells them apart.
    conv_bn = [("0.weight", (16, 8, 1, 1)), ("1.weight", (16,)), ("1.bias", (16,))]
    source = arrays([(f"s1.proj.{k}", s) for k, s in conv_bn]
                    + [(f"s1.f.a.{k}", s) for k, s in conv_bn]
                    + [("s1.f.b.0.weight", (16, 16, 3, 3)), ("s1.f.b.1.weight", (16,)),
                       ("s1.f.b.1.bias", (16,))])
    targets = [("s1.conv1.weight", (16, 8, 1, 1)), ("s1.bn1.weight", (16,)),
               ("s1.bn1.bias", (16,)), ("s1.conv2.weight", (16, 16, 3, 3)),
               ("s1.bn2.weight", (16,)), ("s1.bn2.bias", (16,)),
               ("s1.downsample.0.weight", (16, 8, 1, 1)), ("s1.downsample.1.weight", (16,)),
               ("s1.downsample.1.bias", (16,))]
    match = match_weights(targets, source, by="order")
    assert match.report.ok
    assert match.pairs["s1.conv1.weight"] == "s1.f.a.0.weight"
    assert match.pairs["s1.downsample.0.weight"] == "s1.proj.0.weight"
    # identical siblings keep their order
    twins = arrays([("a.weight", (3, 3)), ("b.weight", (3, 3))])
    pairs = match_weights([("x.weight", (3, 3)), ("y.weight", (3, 3))], twins, by="order").pairs
    assert pairs == {"x.weight": "a.weight", "y.weight": "b.weight"}


def test_an_unordered_file_is_ordered_by_its_keys_natural_order() -> None:
    targets = [(f"f.conv{i}.weight", (i + 1, 1)) for i in range(12)]
    source = arrays([(f"features.{i}.weight", (i + 1, 1)) for i in range(12)])
    shuffled = dict(sorted(source.items()))  # "features.10" before "features.2"
    match = match_weights(targets, shuffled, by="order", ordered=False)
    assert match.report.ok
    assert match.pairs["f.conv10.weight"] == "features.10.weight"
    assert any("records no tensor order" in note for note in match.report.notes)


def test_auto_takes_names_then_the_order_of_the_rest() -> None:
    targets = [("conv.weight", (8, 3, 3, 3)), ("fc.weight", (10, 8)), ("fc.bias", (10,))]
    source = arrays([("conv.weight", (8, 3, 3, 3)), ("head.weight", (10, 8)),
                     ("head.bias", (10,))])
    match = match_weights(targets, source)
    assert match.report.ok and match.report.how == "1 by name, 2 by order"
    assert match.pairs["fc.weight"] == "head.weight"


def test_counters_follow_their_running_mean() -> None:
    targets = [("bn.weight", (4,)), ("bn.running_mean", (4,)), ("bn.num_batches_tracked", ())]
    source = arrays([("norm.weight", (4,)), ("norm.running_mean", (4,)),
                     ("norm.num_batches_tracked", ())])
    match = match_weights(targets, source, by="order")
    assert match.report.ok and match.report.total == 2
    assert match.counters == {"bn.num_batches_tracked": "norm.num_batches_tracked"}


def test_a_report_counts_and_shows_the_first_few_with_a_rename_hint() -> None:
    net = cnndsl.load(ROOT / "specs" / "resnet18.cnn", input="3x32x32")
    targets = network_targets(net)
    source = arrays([(f"backbone.{k}", s) for k, s in targets if not k.startswith("fc.")])
    source |= arrays([("fc.weight", (10, 512)), ("fc.bias", (10,))])
    match = match_weights(targets, source, by="name", network="resnet18")
    report = match.report
    assert (report.matched, len(report.missing), len(report.unexpected),
            len(report.mismatched)) == (0, 100, 100, 2)
    assert report.hint == ("backbone.=",)
    details = report.details(strict=False)
    assert details[0].startswith("mismatched (2): fc.weight: checkpoint (10, 512), network "
                                 "(1000, 512)")
    assert "... (97 more)" in details[1]
    assert "did you mean --rename backbone.=?" in details
    fixed = match_weights(targets, source, by="name", rename=parse_rename(["backbone.="]))
    assert len(fixed.report.mismatched) == 2 and fixed.report.matched == 100


def test_suggest_rename_needs_prefixes_that_several_keys_agree_on() -> None:
    ours = [("features.conv1.weight", (4, 3)), ("features.conv2.weight", (4, 4))]
    assert suggest_rename(ours, [(f"model.{k}", s) for k, s in ours]) == ["model.="]
    # a tail shared by several keys is told apart by the shape
    ours = [("stem.conv.weight", (8, 3)), ("stem.bn.weight", (8,)),
            ("down.conv.weight", (16, 8)), ("down.bn.weight", (16,))]
    theirs = [("model.0.conv.weight", (8, 3)), ("model.0.bn.weight", (8,)),
              ("model.1.conv.weight", (16, 8)), ("model.1.bn.weight", (16,))]
    assert suggest_rename(ours, theirs) == ["model.0.=stem.", "model.1.=down."]
    assert suggest_rename([("a.weight", (2,))], [("b.bias", (2,))]) == []


def test_a_wrong_checkpoint_is_one_report_of_at_most_15_lines() -> None:
    resnet = cnndsl.load(ROOT / "specs" / "resnet50.cnn")
    vgg = cnndsl.load(ROOT / "specs" / "vgg16.cnn", input="3x32x32")
    source = arrays(network_targets(vgg))
    for by in ("auto", "name", "order"):
        match = match_weights(network_targets(resnet), source, by=by, source_name="vgg.npz",
                              network="resnet50")
        assert not match.report.ok
        for strict in (False, True):
            text = render_all([match.report.diagnostic(resnet.nodes[1].span, strict=strict)],
                              {resnet.file: (ROOT / "specs" / "resnet50.cnn").read_text()})
            assert len(text.splitlines()) <= 15, text
            assert "vgg.npz" in text and "[weights]" in text


def test_an_order_search_that_cannot_succeed_ends() -> None:
    # many identical siblings and a misfit at the end: the search must not try their orders
    targets = [(f"l.{i}.weight", (4, 4)) for i in range(60)] + [("fc.weight", (3, 4))]
    source = arrays([(f"m.{i}.weight", (4, 4)) for i in range(60)] + [("fc.weight", (5, 4))])
    match = match_weights(targets, source, by="order")
    assert match.report.matched == 60 and len(match.report.mismatched) == 1
