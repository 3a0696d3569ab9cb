"""Overrides (--set, --input CxHxW) relax failed expects to warnings; labels name lone layers."""

from __future__ import annotations

from pathlib import Path

import cnndsl
from cnndsl.diagnostics import Code

RESNET50 = Path(__file__).resolve().parent.parent / "specs" / "resnet50.cnn"


def test_expects_are_errors_without_overrides() -> None:
    spec = "network n { input x: 3 x 8 x 8\n conv 4 3x3\n expect params == 1 }"
    result = cnndsl.check(spec)
    assert not result.ok
    assert [d.code for d in result.diagnostics] == [Code.EXPECT_FAILED]


def test_set_relaxes_failed_expects_to_warnings() -> None:
    result = cnndsl.check(RESNET50, params={"classes": 10})
    assert result.ok
    assert result.network is not None and result.network.output_shapes() == {"fc": (10,)}
    assert {(d.code, d.severity) for d in result.diagnostics} == {(Code.EXPECT_FAILED, "warning")}


def test_input_override_relaxes_too() -> None:
    spec = "network n { input x: 3 x 8 x 8\n y: conv 4 3x3\n expect y == N x 4 x 6 x 6 }"
    result = cnndsl.check(spec, input="3x10x10")
    assert result.ok and [d.severity for d in result.diagnostics] == ["warning"]


def test_label_names_a_lone_layer_after_a_tensor_reference() -> None:
    spec = """network n {
      input x: 3 x 8 x 8
      a: conv 4 3x3 pad 1
      b: x -> conv 4 1x1
      c: add(a, b)
    }"""
    names = [node.name for node in cnndsl.load(spec).nodes]
    assert names == ["x", "a", "b", "c"]
