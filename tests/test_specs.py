"""The seed architectures in specs/: each total matches its reference and every expect holds."""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import pytest

import cnndsl
from cnndsl import cli, ir

SPECS = Path(__file__).resolve().parent.parent / "specs"

# Parameter totals of the reference implementations, kept here rather than read from the specs,
# so that a spec whose `expect` was edited to match a wrong network still fails.
REFERENCE_PARAMS = {
    "lenet5": 61_706,  # LeCun et al. 1998, full C3 connectivity, parameter-free pooling
    "alexnet": 61_100_840,  # torchvision alexnet
    # The original AlexNet (96-256-384-384-256, groups=2 in conv2/4/5, LRN): by hand,
    # 34,944 + 307,456 + 885,120 + 663,936 + 442,624 (convs)
    # + 37,752,832 + 16,781,312 + 4,097,000 (fc6-8) = 60,965,224, as Caffe's bvlc_alexnet.
    "alexnet_lrn": 60_965_224,
    "vgg16": 138_357_544,  # torchvision vgg16
    "googlenet": 6_624_904,  # torchvision googlenet, aux_logits=False
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "xception": 22_855_952,  # timm legacy_xception
    "seresnet50": 28_088_024,  # timm seresnet50
}

CLASSES = {"lenet5": 10}


@functools.cache
def _load(name: str) -> ir.Network:
    """A spec loaded once for all the tests below; a broken one fails only its own tests."""
    return cnndsl.load(SPECS / f"{name}.cnn")


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_spec_total_matches_reference(name: str) -> None:
    network = _load(name)
    assert network.total_params == REFERENCE_PARAMS[name]
    assert network.trainable_params == REFERENCE_PARAMS[name]


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_spec_expects_hold(name: str) -> None:
    network = _load(name)
    texts = [result.text for result in network.expects]
    assert f"params == {REFERENCE_PARAMS[name]}" in texts
    (output,) = network.outputs
    assert f"{output} == N x {CLASSES.get(name, 1000)}" in texts
    failed = [result.text for result in network.expects if not result.ok]
    assert failed == []


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_spec_output_is_class_scores(name: str) -> None:
    network = _load(name)
    (node,) = network.outputs.values()
    assert network.node(node).shape == (CLASSES.get(name, 1000),)


def test_resnets_share_their_blocks() -> None:
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        text = (SPECS / f"{name}.cnn").read_text(encoding="utf-8")
        assert 'import "blocks/resnet.cnn"' in text
        assert "block " not in text  # no block of its own: the shared ones are used
    blocks = {i.block for name in ("resnet18", "resnet50") for i in _load(name).instances}
    assert blocks == {"basic", "bottleneck"}


def test_googlenet_batchnorm_eps() -> None:
    norms = [n for n in _load("googlenet").nodes if n.kind == "batchnorm"]
    assert len(norms) == 3 + 9 * 6  # the stem's three convs, six per inception block
    assert {n.eps for n in norms} == {0.001}


def test_alexnet_lrn_follows_first_two_stages() -> None:
    network = _load("alexnet_lrn")
    norms = [n for n in network.nodes if n.kind == "lrn"]
    assert [n.name for n in norms] == ["norm1", "norm2"]
    for norm in norms:
        assert (norm.size, norm.beta, norm.k) == (5, 0.75, 2.0)
        assert norm.alpha == pytest.approx(5e-4)  # the paper's 1e-4 times the window of 5
        assert network.node(norm.inputs[0]).kind == "activation"


def test_check_all_specs_exits_zero() -> None:
    files = sorted(str(path) for path in SPECS.glob("*.cnn"))
    assert len(files) >= len(REFERENCE_PARAMS)
    out = io.StringIO()
    code = cli.main(["check", "--format", "json", *files], out=out)
    assert code == 0, out.getvalue()[-2000:]
    reports = json.loads(out.getvalue())
    by_file = {Path(r["file"]).stem: r for r in reports}
    for name, total in REFERENCE_PARAMS.items():
        assert by_file[name]["ok"] is True
        assert by_file[name]["params"] == total
