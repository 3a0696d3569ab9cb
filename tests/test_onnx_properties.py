"""Awkward layer lowerings, one small spec each, and random specs (Hypothesis) against PyTorch.

Each case is exported at the default opset and at 13 and must pass the full checker, give the
IR's shapes under ONNX shape inference and reproduce the PyTorch backend in onnxruntime.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_onnx_export import (  # tests/ is on sys.path (pytest's rootdir-relative import)
    DEFAULT,
    assert_matches,
    check_structure,
    state_arrays,
    torch_model,
)

import cnndsl
from cnndsl import ir
from cnndsl.diagnostics import Code


def _spec(body: str, size: str = "3 x 15 x 16") -> str:
    return f"network case {{\n  input image: {size}\n{body}\n}}\n"


CASES = {
    "ceil_maxpool": "  conv 4 3x3 -> maxpool 3x3 /2 ceil\n  p: maxpool 2x2 /2 pad 1 ceil",
    "ceil_avgpool_counting_pad": "  conv 4 3x3 -> avgpool 3x3 /2 pad 1 ceil",
    "ceil_avgpool_not_counting_pad":
        "  conv 4 3x3 -> avgpool 3x3 /2 pad 1 ceil count_include_pad=false",
    "avgpool_pad": "  avgpool 3x3 /1 pad 1 -> avgpool 3x3 /2 pad 1 count_include_pad=false",
    "same_padding_asymmetric": "  conv 8 4x4 /2 pad same -> conv 8 3x3 /2 pad same dilation=1",
    "explicit_four_pads": "  conv 8 3x3 pad (0, 1, 2, 1) -> conv 8 3x3 dilation=2 pad 2",
    "adaptive_avg_uneven": "  conv 4 3x3 pad 1 -> adaptive_avgpool 4x3",
    "adaptive_avg_even": "  conv 4 3x3 -> adaptive_avgpool 13x7",
    "adaptive_max_uneven": "  conv 4 3x3 pad 1 -> adaptive_maxpool 4x6",
    "lrn_odd": "  conv 12 3x3 -> lrn 5 alpha=0.01 beta=0.75 k=2",
    "lrn_even": "  conv 12 3x3 -> lrn 4 alpha=0.05 beta=0.5 k=1",
    "channel_maxpool": "  conv 12 3x3 -> channel_maxpool 3",
    "grouped_and_separable": "  conv 8 3x3 pad 1 -> conv 16 3x3 groups=4 -> dwconv 3x3 multiplier=2"
                             " -> sepconv 8 3x3 pad 1",
    "deconv": "  conv 8 3x3 -> deconv 4 3x3 /2 pad 1 output_padding=1 -> deconv 4 4x4 /2 pad 1"
              " groups=2",
    "upsample_nearest": "  conv 4 3x3 -> upsample 2x",
    "upsample_bilinear": "  conv 4 3x3 -> upsample 3x bilinear",
    "activations": "  conv 8 3x3 -> hardswish -> conv 8 1x1 -> hardsigmoid -> conv 8 1x1 -> gelu"
                   " -> conv 8 1x1 -> silu -> conv 8 1x1 -> relu6 -> leakyrelu 0.2 -> tanh"
                   " -> sigmoid -> softmax",
    "head": "  conv 8 3x3 /2 -> bn -> relu -> gmp -> flatten -> dropout 0.3 -> linear 16 -> bn"
            " -> relu -> linear 8 -> boxes xyxy boxes=2",
}


def _network(text: str) -> ir.Network:
    result = cnndsl.check(text)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.network is not None
    return result.network


def _exports_and_matches(network: ir.Network, opsets: tuple[int, ...]) -> None:
    model = torch_model(network)
    weights = state_arrays(model)
    for opset in opsets:
        exported = cnndsl.to_onnx(network, opset=opset, weights=weights)
        assert_matches(network, check_structure(network, exported), model)


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_lowering_matches_torch(case: str) -> None:
    _exports_and_matches(_network(_spec(CASES[case])), (DEFAULT, 13))


def test_what_the_checker_accepts_at_the_backends_limits_runs_in_both() -> None:
    # The edges of tests/specs/bad/backend_constraints.cnn: grouped deconv with output_padding
    # one below the stride, an even lrn window, the widest lrn window, a tiny eps.
    body = ("  deconv 6 3x3 /2 dilation=2 output_padding=1 groups=3 -> lrn 4 -> lrn 11"
            " -> bn eps=1e-9")
    _exports_and_matches(_network(_spec(body, "6 x 8 x 8")), (DEFAULT, 11))


def test_ceil_mode_pooling_has_the_extra_window() -> None:
    network = _network(_spec("  p: maxpool 2x2 /2 ceil", "3 x 5 x 5"))
    assert network.node("p").shape == (3, 3, 3)
    exported = cnndsl.to_onnx(network)
    (pool,) = [n for n in exported.graph.node if n.op_type == "MaxPool"]
    pads = next(a.ints for a in pool.attribute if a.name == "pads")
    assert list(pads) == [0, 0, 1, 1]


FOLDED = {
    "conv": "  conv 8 3x3 -> bn -> relu -> conv 8 3x3 groups=2 bias=true -> bn",
    "deconv": "  conv 8 3x3 -> deconv 6 3x3 /2 pad 1 output_padding=1 -> bn -> relu",
    "grouped_deconv": "  conv 8 3x3 -> deconv 6 4x4 /2 pad 1 groups=2 -> bn -> relu"
                      " -> deconv 4 3x3 groups=2 bias=true -> bn",
}


@pytest.mark.parametrize("case", sorted(FOLDED))
def test_batchnorm_folds_into_every_convolution_kind(case: str) -> None:
    network = _network(_spec(FOLDED[case]))
    model = torch_model(network)
    for opset in (DEFAULT, 13):
        exported = cnndsl.to_onnx(network, opset=opset, weights=state_arrays(model),
                                  fold_batchnorm=True)
        assert "BatchNormalization" not in {node.op_type for node in exported.graph.node}
        assert_matches(network, check_structure(network, exported), model)


# random specs -----------------------------------------------------------------------------------

ACTIVATIONS = ("relu", "relu6", "silu", "hardswish", "leakyrelu 0.1", "gelu", "sigmoid")


@st.composite
def _statement(draw: st.DrawFn, channels: int) -> tuple[str, int]:
    """One statement and the channel count after it."""
    kind = draw(st.sampled_from(("conv", "conv", "residual", "concat", "se", "dw", "pool")))
    act = draw(st.sampled_from(ACTIVATIONS))
    width = draw(st.sampled_from((4, 6, 8)))
    if kind == "conv":
        kernel = draw(st.sampled_from(("1x1", "3x3 pad 1", "3x3 /2 pad same", "2x2 pad same")))
        norm = draw(st.booleans())
        return f"conv {width} {kernel}{' -> bn' if norm else ''} -> {act}", width
    if kind == "residual":
        inner = draw(st.sampled_from((channels, width)))
        return (f"residual {{\n    conv {inner} 3x3 pad 1 -> bn -> {act}\n"
                f"    conv {inner} 3x3 pad 1 -> bn\n  }}\n  -> relu"), inner
    if kind == "concat":
        a, b = draw(st.sampled_from((2, 4))), draw(st.sampled_from((2, 4)))
        return (f"concat {{ conv {a} 1x1 -> {act} | conv {b} 3x3 pad 1 -> bn -> relu"
                f" | maxpool 3x3 /1 pad 1 }}"), a + b + channels
    if kind == "se":
        return "se(reduction = 2)", channels
    if kind == "dw":
        return f"dwconv 3x3 pad 1 -> bn -> {act}", channels
    return draw(st.sampled_from(("maxpool 2x2 ceil", "avgpool 3x3 /2 pad 1 ceil",
                                 "upsample 2x", "identity"))), channels


@st.composite
def random_specs(draw: st.DrawFn) -> str:
    """A small valid chain or DAG, as .cnn text."""
    side = draw(st.integers(min_value=6, max_value=14))
    lines, channels = [], 3
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        text, channels = draw(_statement(channels))
        lines.append(f"  {text}")
    if draw(st.booleans()):
        lines.append(f"  head: gap -> flatten -> linear {draw(st.integers(2, 5))}")
    return _spec("\n".join(lines), f"3 x {side} x {side}")


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(random_specs())
def test_random_specs_export_and_match_torch(text: str) -> None:
    result = cnndsl.check(text)
    # A chain may pool a tiny map below its kernel; those specs are rightly rejected.
    assume(result.ok or all(d.code in (Code.KERNEL_TOO_LARGE, Code.EMPTY_OUTPUT)
                            for d in result.diagnostics))
    assume(result.ok)
    assert result.network is not None
    _exports_and_matches(result.network, (DEFAULT,))
