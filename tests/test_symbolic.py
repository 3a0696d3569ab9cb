"""Symbolic sizes: canonical polynomials with floor division, and open input sizes in specs."""

from __future__ import annotations

import itertools

import pytest

from cnndsl import compiler, ir
from cnndsl.diagnostics import Code
from cnndsl.symbolic import Poly, ceildiv, dim_str, floordiv, simplify, substitute

H, W = Poly.symbol("H"), Poly.symbol("W")

STRIDED = """network t {
  input image: 3 x H x W
  conv 8 3x3 /2 pad 1 -> maxpool 3x3 /2 pad 1
  conv 8 3x3 /2 pad 1 -> conv 8 3x3 /2 pad 1
  out: conv 8 3x3 /2 pad 1
  expect out == N x 8 x (H + 31)//32 x (W + 31)//32
}
"""


def test_canonical_forms_compare_equal() -> None:
    assert H + W == W + H
    assert H * 2 - H == H
    assert simplify(H - H) == 0
    assert (H + 1) * (W + 1) == H * W + H + W + 1
    assert str(H * W * 3) == "3*H*W"


def test_nested_divisions_fold_into_one() -> None:
    assert floordiv(floordiv(H, 2), 16) == floordiv(H, 32)
    assert str(floordiv(H + 1, 2) + 3) == "(H + 7)//2"
    assert ceildiv(ceildiv(H, 2), 2) == ceildiv(H, 4)
    assert str(ceildiv(H, 32)) == "(H + 31)//32"


def test_exact_division_stays_a_polynomial() -> None:
    assert floordiv(H * 4 + 8, 4) == H + 2
    assert floordiv(H, 1) == H


def test_dim_str_parenthesises_compound_sizes() -> None:
    assert dim_str(7) == "7"
    assert dim_str(H) == "H"
    assert dim_str(H + 1) == "(H + 1)"
    assert dim_str(floordiv(H + 1, 2)) == "(H + 1)//2"


@pytest.mark.parametrize("h", [1, 2, 3, 31, 32, 33, 224, 513])
def test_substitution_agrees_with_integer_arithmetic(h: int) -> None:
    expressions = [
        (lambda x: floordiv(floordiv(x + 1, 2) + 1, 2) * 3 - 1),
        (lambda x: ceildiv(x * 5 + 2, 7) + floordiv(x, 3)),
        (lambda x: floordiv(ceildiv(x, 2) - 1, 2) + 1),
    ]
    for make in expressions:
        assert substitute(make(H), {"H": h}) == make(h)


def test_substitution_binds_some_symbols_only() -> None:
    value = substitute(H * W + floordiv(W + 1, 2), {"H": 4})
    assert value == W * 4 + floordiv(W + 1, 2)
    assert substitute(value, {"W": 9}) == 41


def test_symbolic_input_flows_through_strided_layers() -> None:
    network = compiler.load(STRIDED)
    assert network.symbols == ["H", "W"]
    assert [ir.shape_str(n.shape) for n in network.nodes[1:3]] == [
        "N x 8 x (H + 1)//2 x (W + 1)//2", "N x 8 x (H + 3)//4 x (W + 3)//4"]
    assert network.node("out").shape == (8, ceildiv(H, 32), ceildiv(W, 32))
    assert [e.ok for e in network.expects] == [True]


@pytest.mark.parametrize("h, w", [(512, 512), (224, 320), (33, 1)])
def test_bound_sizes_match_the_symbolic_shape(h: int, w: int) -> None:
    symbolic = compiler.load(STRIDED).node("out").shape
    bound = compiler.load(STRIDED, input=f"H={h},W={w}")
    assert bound.node("out").shape == tuple(substitute(d, {"H": h, "W": w}) for d in symbolic)
    assert bound.node("image").shape == (3, h, w)
    assert [e.ok for e in bound.expects] == [True]  # the expect reads the bound H and W


def test_full_input_override_replaces_the_first_input() -> None:
    network = compiler.load(STRIDED.replace("  expect out", "  # expect out"), input="3x64x96")
    assert network.node("image").shape == (3, 64, 96)
    assert network.node("out").shape == (8, 2, 3)


def test_input_override_with_the_wrong_rank_is_reported() -> None:
    result = compiler.check(STRIDED, input="64x64")
    assert [d.code for d in result.diagnostics] == [Code.RANK_MISMATCH]


@pytest.mark.parametrize("text", ["H=0,W=4", "3x0x8", "H=x", "H", "3x", "H=1;W=2"])
def test_bad_input_bindings_are_reported(text: str) -> None:
    result = compiler.check(STRIDED, input=text)
    assert not result.ok and [d.code for d in result.diagnostics] == [Code.BAD_VALUE]


def test_parse_input_sizes() -> None:
    assert compiler.parse_input_sizes("H=512, W=256") == ({"H": 512, "W": 256}, None)
    assert compiler.parse_input_sizes("3x512x512") == ({}, (3, 512, 512))
    assert compiler.parse_input_sizes("3 x 64 x 64") == ({}, (3, 64, 64))
    assert compiler.parse_input_sizes(None) == ({}, None)


def test_symbolic_concat_and_add_compare_canonical_sizes() -> None:
    text = """network t {
  input image: 3 x H x W
  a: conv 8 3x3 /2 pad 1
  b: image -> maxpool 2x2 -> conv 8 3x3 pad 1
  c: image -> conv 8 1x1 /2
  s: add(a, c)
  j: concat(a, b)
  output s, j
}
"""
    result = compiler.check(text)
    # (H+1)//2 for the strided convs; H//2 for the pool: equal only for even H, so the concat
    # of a and b is reported while the add of two (H+1)//2 maps holds.
    codes = [d.code for d in result.diagnostics]
    assert codes == [Code.SPATIAL_MISMATCH]
    assert compiler.check(text.replace("maxpool 2x2", "maxpool 2x2 ceil")).ok


def test_symbolic_sizes_and_bound_sizes_give_the_same_parameters() -> None:
    text = STRIDED.replace("  expect out", "  # expect out")
    counts = {compiler.load(text, input=f"H={h},W={h}").total_params for h in (32, 64)}
    assert counts == {compiler.load(text).total_params}


def test_same_padding_with_stride_needs_a_concrete_size() -> None:
    text = "network t {\n  input image: 3 x H x W\n  conv 8 3x3 /2 pad same\n}\n"
    assert [d.code for d in compiler.check(text).diagnostics] == [Code.BAD_VALUE]
    assert compiler.check(text, input="H=31,W=32").ok


def test_symbolic_pooling_agrees_with_bound_sizes_including_ceil_mode() -> None:
    # Ceil mode drops a last window that would start in the right padding (PyTorch's rule);
    # the symbolic shape must give the same size as binding H first, for every H.
    for kernel, stride, pad, ceil in itertools.product((1, 2, 3), (1, 2, 3, 4), (0, 1),
                                                       (False, True)):
        if 2 * pad > kernel:
            continue
        layer = f"maxpool {kernel}x{kernel} /{stride} pad {pad}{' ceil' if ceil else ''}"
        text = f"network t {{\n  input image: 1 x H x H\n  {layer}\n}}\n"
        symbolic = compiler.load(text).nodes[-1].shape
        assert symbolic is not None
        for h in range(3, 20):
            bound = compiler.load(text, input=f"H={h}").nodes[-1].shape
            assert bound == tuple(substitute(d, {"H": h}) for d in symbolic), (layer, h)


def test_a_failed_expect_stays_an_error_when_sizes_are_only_bound() -> None:
    # binding H and W checks the spec as written; only overrides relax expect lines
    result = compiler.check(STRIDED.replace("N x 8 x", "N x 9 x"), input="H=64,W=64")
    assert not result.ok
    assert [(d.code, d.severity) for d in result.diagnostics] == [(Code.EXPECT_FAILED, "error")]
