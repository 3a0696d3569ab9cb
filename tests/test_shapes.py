"""Shape rules per IR kind, through small specs, with the errors each rule raises."""

from __future__ import annotations

import pytest

from cnndsl import compiler, ir
from cnndsl.diagnostics import Code


def net(body: str, size: str = "3 x 32 x 32") -> str:
    return f"network t {{\n  input image: {size}\n{body}\n}}\n"


def last(body: str, size: str = "3 x 32 x 32") -> ir.AnyNode:
    return compiler.load(net(body, size)).nodes[-1]


def codes(body: str, size: str = "3 x 32 x 32") -> list[Code]:
    return [d.code for d in compiler.check(net(body, size)).diagnostics]


@pytest.mark.parametrize(("layer", "shape"), [
    ("conv 16 3x3", (16, 30, 30)),
    ("conv 16 3x3 /2 pad 1", (16, 16, 16)),
    ("conv 16 3x3 dilation=2 pad 2", (16, 32, 32)),
    ("conv 16 (1, 7) pad (0, 3)", (16, 32, 32)),
    ("conv 15 3x3 groups=3 pad 1", (15, 32, 32)),
    ("dwconv 3x3 multiplier=2 pad 1", (6, 32, 32)),
    ("deconv 8 4x4 /2 pad 1", (8, 64, 64)),
    ("deconv 8 3x3 /2 pad 1 output_padding=1", (8, 64, 64)),
    ("maxpool 2x2", (3, 16, 16)),
    ("maxpool 3x3 /2", (3, 15, 15)),
    ("maxpool 3x3 /2 ceil", (3, 16, 16)),
    ("avgpool 3x3 /1 pad 1", (3, 32, 32)),
    ("gap", (3, 1, 1)),
    ("gmp", (3, 1, 1)),
    ("adaptive_avgpool 6x6", (3, 6, 6)),
    ("adaptive_maxpool (2, 3)", (3, 2, 3)),
    ("flatten", (3 * 32 * 32,)),
    ("upsample 2x", (3, 64, 64)),
    ("upsample (2, 3) bilinear", (3, 64, 96)),
    ("bn -> relu6 -> leakyrelu 0.2 -> sigmoid -> tanh -> silu -> gelu", (3, 32, 32)),
    ("hardswish -> hardsigmoid -> softmax -> dropout 0.3 -> identity -> lrn 5", (3, 32, 32)),
])
def test_layer_output_shapes(layer: str, shape: tuple[int, ...]) -> None:
    assert last(f"  {layer}").shape == shape


def test_channel_pool_divides_channels() -> None:
    assert last("  conv 12 1x1 -> channel_maxpool 4").shape == (3, 32, 32)


def test_sepconv_is_depthwise_then_pointwise() -> None:
    network = compiler.load(net("  s: sepconv 16 3x3 pad 1"))
    depthwise, pointwise = network.nodes[1:]
    assert isinstance(depthwise, ir.Conv) and depthwise.groups == 3
    assert depthwise.shape == (3, 32, 32)
    assert isinstance(pointwise, ir.Conv) and pointwise.kernel == (1, 1)
    assert [n.name for n in network.nodes[1:]] == ["s.depthwise", "s.pointwise"]


def test_linear_takes_its_features_from_the_input() -> None:
    node = last("  gap -> flatten -> linear 10")
    assert isinstance(node, ir.Linear) and node.in_features == 3 and node.shape == (10,)
    assert node.params == 3 * 10 + 10


def test_conv_bias_is_dropped_before_batch_norm() -> None:
    network = compiler.load(net("  conv 8 3x3 -> bn\n  conv 8 3x3 -> relu\n"
                                "  conv 8 3x3 bias=true -> bn"))
    biases = [n.bias for n in network.nodes if isinstance(n, ir.Conv)]
    assert biases == [False, True, True]
    assert [n.params for n in network.nodes if isinstance(n, ir.Conv)] == [216, 584, 584]


def test_residual_adds_an_automatic_projection_where_the_shape_changes() -> None:
    network = compiler.load(net("  conv 8 1x1\n  residual {\n    conv 16 3x3 /2 pad 1 -> bn\n  }"))
    down = [n for n in network.nodes if n.name.startswith("downsample")]
    assert [(n.kind, n.name) for n in down] == [("conv", "downsample.0"),
                                                ("batchnorm", "downsample.1")]
    conv = down[0]
    assert isinstance(conv, ir.Conv) and conv.stride == (2, 2) and conv.kernel == (1, 1)
    assert network.nodes[-1].shape == (16, 16, 16)


def test_residual_keeps_the_identity_where_the_shape_holds() -> None:
    network = compiler.load(net("  conv 8 1x1\n  residual { conv 8 3x3 pad 1 }"))
    add = network.nodes[-1]
    assert isinstance(add, ir.Add) and add.inputs == ["conv2", "conv1"]


def test_mul_broadcasts_a_channel_gate() -> None:
    network = compiler.load(net("  x: conv 8 1x1\n  g: x -> gap -> sigmoid\n  mul(x, g)"))
    assert network.nodes[-1].shape == (8, 32, 32)


def test_squeeze_excitation_builds_its_named_nodes() -> None:
    network = compiler.load(net("  conv 32 1x1 -> se(reduction = 4)"))
    names = [n.name for n in network.nodes if n.name.startswith("se.")]
    assert names == ["se.pool", "se.fc1", "se.relu", "se.fc2", "se.gate", "se.scale"]
    fc1 = network.node("se.fc1")
    assert isinstance(fc1, ir.Conv) and fc1.out_channels == 8 and fc1.bias


def test_concat_adds_channels() -> None:
    network = compiler.load(net("  a: conv 4 1x1\n  b: image -> conv 6 1x1\n  concat(a, b)"))
    assert network.nodes[-1].shape == (10, 32, 32)


@pytest.mark.parametrize(("body", "code"), [
    ("  a: conv 4 1x1\n  b: image -> conv 6 1x1\n  add(a, b)", Code.CHANNEL_MISMATCH),
    ("  a: conv 4 1x1\n  b: image -> conv 4 1x1 /2\n  add(a, b)", Code.SPATIAL_MISMATCH),
    ("  a: conv 4 1x1\n  b: image -> maxpool 2x2 -> conv 4 1x1\n  concat(a, b)",
     Code.SPATIAL_MISMATCH),
    ("  a: gap -> flatten\n  add(a, image)", Code.RANK_MISMATCH),
    ("  a: conv 4 1x1\n  b: image -> conv 6 1x1\n  mul(a, b)", Code.CHANNEL_MISMATCH),
    ("  conv 8 33x33", Code.KERNEL_TOO_LARGE),
    ("  conv 8 3x3 dilation=16", Code.KERNEL_TOO_LARGE),
    ("  maxpool 3x3 pad 2", Code.BAD_VALUE),
    ("  deconv 8 3x3 /2 output_padding=2", Code.BAD_VALUE),
    ("  deconv 8 3x3 pad 20", Code.EMPTY_OUTPUT),
    ("  flatten -> maxpool 2x2", Code.RANK_MISMATCH),
    ("  flatten -> upsample 2x", Code.RANK_MISMATCH),
    ("  linear 4", Code.RANK_MISMATCH),
    ("  conv 8 3x3 groups=2", Code.CHANNEL_MISMATCH),
    ("  channel_maxpool 2", Code.CHANNEL_MISMATCH),
    ("  gap -> flatten -> se", Code.RANK_MISMATCH),
    ("  conv 10 1x1 -> se", Code.INEXACT_DIVISION),
    ("  residual { conv 8 3x3 /3 }", Code.SPATIAL_MISMATCH),
    ("  residual(project = false) { conv 8 1x1 }", Code.CHANNEL_MISMATCH),
])
def test_shape_errors(body: str, code: Code) -> None:
    assert codes(body) == [code]


def test_error_span_is_the_layer_that_fails() -> None:
    result = compiler.check(net("  conv 8 3x3 -> relu -> conv 8 31x31"))
    (diagnostic,) = result.diagnostics
    assert (diagnostic.span.line, diagnostic.span.col) == (3, 25)


def test_feature_vector_input() -> None:
    network = compiler.load(net("  linear 64 -> relu -> linear 10 -> softmax", size="100"))
    assert [n.shape for n in network.nodes] == [(100,), (64,), (64,), (10,), (10,)]
    assert network.total_params == 100 * 64 + 64 + 64 * 10 + 10


def test_trainable_params_and_totals() -> None:
    network = compiler.load(net("  conv 8 3x3 -> bn -> gap -> flatten -> linear 2"))
    assert network.total_params == 3 * 8 * 9 + 2 * 8 + 8 * 2 + 2
    assert network.trainable_params == network.total_params
