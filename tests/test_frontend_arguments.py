"""The one argument binder: layers, composites and blocks follow the same rules and wording."""

from __future__ import annotations

import pytest

from cnndsl import compiler
from cnndsl.diagnostics import Code

BLOCK = "block widen(width, depth = 2) {\n  conv width 1x1\n  conv depth 1x1\n}\n"


def net(body: str, head: str = "") -> str:
    return f"{head}network t {{\n  input image: 3 x 32 x 32\n{body}\n}}\n"


def errors(body: str, head: str = "") -> list[tuple[Code, str]]:
    result = compiler.check(net(body, head))
    return [(d.code, d.message) for d in result.diagnostics if d.severity == "error"]


@pytest.mark.parametrize(("body", "code", "message"), [
    ("  relu 3", Code.TOO_MANY_ARGUMENTS, "'relu' takes no arguments"),
    ("  conv 8 3x3 2", Code.TOO_MANY_ARGUMENTS, "'conv' takes 2 positional arguments"),
    ("  widen(8, 2, 1)", Code.TOO_MANY_ARGUMENTS, "block 'widen' takes 2 arguments"),
    ("  residual(2) { conv 3 3x3 pad 1 }", Code.TOO_MANY_ARGUMENTS,
     "'residual' takes no positional arguments"),
    ("  conv 8 3x3 dilaton=2", Code.UNKNOWN_PARAMETER, "'conv' has no parameter 'dilaton'"),
    ("  widen(8, wdth = 2)", Code.UNKNOWN_PARAMETER, "block 'widen' has no parameter 'wdth'"),
    ("  se(reduce = 2)", Code.UNKNOWN_PARAMETER, "'se' has no parameter 'reduce'"),
    ("  conv 8 3x3 kernel=3", Code.DUPLICATE_NAME, "'kernel' is given twice to 'conv'"),
    ("  widen(8, width = 8)", Code.DUPLICATE_NAME, "'width' is given twice to block 'widen'"),
    ("  residual(project = true, project = false) { conv 3 3x3 pad 1 }", Code.DUPLICATE_NAME,
     "'project' is given twice to 'residual'"),
    ("  conv 8", Code.MISSING_ARGUMENT, "'conv' needs 'kernel'"),
    ("  widen(depth = 2)", Code.MISSING_ARGUMENT, "block 'widen' needs 'width'"),
    ("  conv eight 3x3", Code.UNDEFINED_NAME, "conv filters: 'eight' is not defined"),
    ("  widen(eight)", Code.UNDEFINED_NAME, "widen width: 'eight' is not defined"),
    ("  se(reduction = 0)", Code.BAD_VALUE,
     "se reduction: expected a number above zero, got 0"),
])
def test_misuse_is_worded_alike_for_every_callee(body: str, code: Code, message: str) -> None:
    assert errors(body, BLOCK) == [(code, message)]


def test_a_keyword_takes_its_parameter_out_of_the_positional_order() -> None:
    # `conv filters=8 3x3` binds 3x3 to the kernel; a block call binds the same way.
    layer = compiler.load(net("  conv filters=8 3x3"))
    assert layer.nodes[-1].kernel == (3, 3)  # type: ignore[union-attr]
    block = compiler.load(net("  widen(depth = 4, 8)", BLOCK))
    assert block.instances[0].arguments == {"depth": 4, "width": 8}


def test_block_arguments_are_recorded_in_call_order_then_defaults() -> None:
    network = compiler.load(net("  widen(8)", BLOCK))
    assert list(network.instances[0].arguments.items()) == [("width", 8), ("depth", 2)]


def test_a_default_sees_the_parameters_before_it() -> None:
    head = "block b(w, v = w * 2) {\n  conv v 1x1\n}\n"
    network = compiler.load(net("  b(3)", head))
    assert network.nodes[-1].out_channels == 6  # type: ignore[union-attr]


def test_flag_words_set_their_parameter() -> None:
    network = compiler.load(net("  maxpool 2x2 ceil"))
    assert network.nodes[-1].ceil_mode is True  # type: ignore[union-attr]
    assert errors("  maxpool 2x2 ceil ceil=true") == [
        (Code.DUPLICATE_NAME, "'ceil' is given twice to 'maxpool'")]
