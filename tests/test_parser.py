"""The grammar's constructs: text to surface AST, and through elaboration to the names they give."""

from __future__ import annotations

import pytest

from cnndsl import compiler, ir
from cnndsl.diagnostics import CnnError, Code
from cnndsl.syntax import ast
from cnndsl.syntax.parser import MAX_NESTING, parse


def network_body(text: str) -> ast.Body:
    """The body of the only network in a module."""
    (item,) = [i for i in parse(text).items if isinstance(i, ast.NetworkDef)]
    return item.body


def chains(text: str) -> list[ast.ChainStatement]:
    return [s for s in network_body(text).statements if isinstance(s, ast.ChainStatement)]


def net(body: str, head: str = "") -> str:
    return f"{head}network t {{\n  input image: 3 x 32 x 32\n{body}\n}}\n"


def load(text: str, **options: object) -> ir.Network:
    return compiler.load(text, **options)  # type: ignore[arg-type]


def test_multi_line_chain_continues_on_arrow_lines() -> None:
    text = net("  conv 8 3x3 pad 1\n    -> bn   # a comment between the lines\n\n    -> relu")
    (statement,) = chains(text)
    assert [c.name for c in statement.chain.calls] == ["conv", "bn", "relu"]
    network = load(text)
    assert [n.kind for n in network.nodes] == ["input", "conv", "batchnorm", "activation"]


def test_arrow_at_line_end_continues_too() -> None:
    (statement,) = chains(net("  conv 8 3x3 ->\n    relu"))
    assert [c.name for c in statement.chain.calls] == ["conv", "relu"]


def test_comment_mentioning_an_arrow_does_not_continue_a_statement() -> None:
    statements = chains(net("  conv 8 3x3\n  # -> this is prose\n  relu"))
    assert len(statements) == 2


def test_semicolons_separate_statements() -> None:
    text = "network t { input image: 3 x 8 x 8; conv 4 1x1; relu }"
    assert [s.chain.calls[0].name for s in chains(text)] == ["conv", "relu"]
    assert load(text).nodes[-1].shape == (4, 8, 8)


def test_comments_and_blank_lines_anywhere() -> None:
    text = ("# head\n\n# more\nnetwork t {  # trailing\n\n  input x: 3 x 8 x 8 # c\n"
            "  relu\n}\n# end\n")
    assert [n.name for n in load(text).nodes] == ["x", "relu1"]


def test_bar_separates_concat_branches_on_one_line_or_several() -> None:
    one_line = net("  concat { conv 4 1x1 | conv 6 3x3 pad 1 | maxpool 3x3 /1 pad 1 }")
    several = net("  concat {\n    conv 4 1x1\n    | conv 6 3x3 pad 1\n"
                  "    | maxpool 3x3 /1 pad 1\n  }")
    for text in (one_line, several):
        network = load(text)
        assert network.nodes[-1].shape == (4 + 6 + 3, 32, 32)
        # A branch of one layer takes the branch's name, as a labelled statement does.
        assert {n.name for n in network.nodes} >= {"branch1", "branch2", "branch3", "concat1"}


def test_bar_outside_concat_is_an_error() -> None:
    result = compiler.check(net("  residual { relu | relu }"))
    assert [d.code for d in result.diagnostics] == [Code.SYNTAX]


def test_sizes_pads_and_strides() -> None:
    (statement,) = chains(net("  conv 8 3x5 /2 pad (1, 2)"))
    (call,) = statement.chain.calls
    kinds = [(a.name, type(a.value).__name__) for a in call.args]
    assert kinds == [(None, "Number"), (None, "Size"), ("stride", "Number"),
                     ("padding", "Tuple")]
    conv = load(net("  conv 8 3x5 /2 pad (1, 2)")).nodes[-1]
    assert isinstance(conv, ir.Conv)
    assert (conv.kernel, conv.stride, conv.padding) == ((3, 5), (2, 2), (1, 2, 1, 2))


@pytest.mark.parametrize(("pad", "padding", "shape"), [
    ("pad 1", (1, 1, 1, 1), (8, 32, 32)),
    ("pad valid", (0, 0, 0, 0), (8, 30, 30)),
    ("pad same", (1, 1, 1, 1), (8, 32, 32)),
    ("pad (0, 1)", (0, 1, 0, 1), (8, 30, 32)),
    ("pad (1, 0, 2, 0)", (1, 0, 2, 0), (8, 33, 30)),
])
def test_padding_forms(pad: str, padding: tuple[int, ...], shape: tuple[int, ...]) -> None:
    conv = load(net(f"  conv 8 3x3 {pad}")).nodes[-1]
    assert isinstance(conv, ir.Conv) and conv.padding == padding and conv.shape == shape


def test_same_padding_with_stride_puts_the_extra_pixel_bottom_right() -> None:
    conv = load(net("  conv 8 3x3 /2 pad same")).nodes[-1]  # 32 -> 16 needs 1 pixel in all
    assert isinstance(conv, ir.Conv) and conv.padding == (0, 0, 1, 1) and conv.shape == (8, 16, 16)


def test_keyword_arguments_and_flags() -> None:
    network = load(net("  conv 8 3x3 dilation=2 groups=1 bias=false -> maxpool 3x3 /2 ceil\n"
                       "  upsample 2x bilinear"))
    conv, pool, up = network.nodes[1:]
    assert isinstance(conv, ir.Conv) and conv.dilation == (2, 2) and conv.bias is False
    assert isinstance(pool, ir.Pool) and pool.ceil_mode and pool.shape == (8, 14, 14)
    assert isinstance(up, ir.Upsample) and up.mode == "bilinear" and up.shape == (8, 28, 28)


def test_paren_calls_with_positional_and_keyword_arguments() -> None:
    head = "block stage(width, stride = 1) {\n  conv width 3x3 /stride pad 1\n}\n"
    (statement,) = chains(net("  stage(16, stride = 2)", head))
    (call,) = statement.chain.calls
    assert call.name == "stage" and [a.name for a in call.args] == [None, "stride"]
    assert load(net("  stage(16, stride = 2)", head)).nodes[-1].shape == (16, 16, 16)


def test_arithmetic_in_arguments_and_exact_division_in_parentheses() -> None:
    head = "const base = 8\nblock half() {\n  conv (in/2) 1x1\n}\n"
    network = load(net("  conv base*4 - 2 + 2 3x3 pad 1 -> half", head))
    assert [n.shape[0] for n in network.nodes[1:]] == [32, 16]  # type: ignore[index]


def test_tuples_nest() -> None:
    (statement,) = chains(net("  detect anchors=((10, 14), (23, 27)) classes=1 stride=32"))
    value = statement.chain.calls[0].args[0].value
    assert isinstance(value, ast.Tuple) and all(isinstance(i, ast.Tuple) for i in value.items)


def test_labels_repeats_and_tensor_references() -> None:
    text = net("  stem: conv 8 3x3 pad 1\n  body: relu x 2\n  out: add(stem, body)")
    network = load(text)
    names = [n.name for n in network.nodes]
    assert names == ["image", "stem", "body.relu1", "body.relu2", "out"]
    assert network.outputs == {"out": "out"}
    assert network.nodes[-1].inputs == ["stem", "body.relu2"]


def test_residual_with_explicit_shortcut() -> None:
    text = net("  residual {\n    conv 8 3x3 pad 1\n  } shortcut {\n    conv 8 1x1\n  }")
    network = load(text)
    add = network.nodes[-1]
    assert isinstance(add, ir.Add) and add.shape == (8, 32, 32)
    # the written shortcut, not an automatic projection
    assert [n.name for n in network.nodes] == ["image", "conv1", "downsample.conv1", "add1"]
    assert add.inputs == ["conv1", "downsample.conv1"]


def test_several_inputs_and_outputs() -> None:
    text = ("network t {\n  input a: 3 x 8 x 8\n  input b: 3 x 8 x 8\n"
            "  s: add(a, b)\n  c: concat(a, b)\n  output s, c\n}\n")
    network = load(text)
    assert network.inputs == ["a", "b"]
    assert network.output_shapes() == {"s": (3, 8, 8), "c": (6, 8, 8)}


@pytest.mark.parametrize("line", [
    "expect params == 1_234",
    "expect trainable params == 56",
    "expect fc == N x 10",
    "expect fc != N x 3 x H x W",
    "expect params < 2M",
    "expect inference memory(batch=8) < 16GiB",
])
def test_expect_forms_parse(line: str) -> None:
    body = network_body(net(f"  fc: relu\n  {line}"))
    (expect,) = [s for s in body.statements if isinstance(s, ast.Expect)]
    assert expect.op in ("==", "!=", "<")
    assert expect.span.line == 4 and expect.span.col == 3


def test_expect_values_keep_underscores_and_units() -> None:
    body = network_body(net("  relu\n  expect params < 2M\n  expect params == 1_234"))
    quantity, number = [s.value[0] for s in body.statements if isinstance(s, ast.Expect)]
    assert isinstance(quantity, ast.Quantity) and (quantity.value, quantity.unit) == (2, "M")
    assert isinstance(number, ast.Number) and number.value == 1234


def test_spans_are_one_based_with_exclusive_ends() -> None:
    (statement,) = chains("network t {\n  input x: 3 x 8 x 8\n  stem: conv 8 3x3\n}")
    call = statement.chain.calls[0]
    assert (call.name_span.line, call.name_span.col, call.name_span.end_col) == (3, 9, 13)
    assert statement.label_span is not None and statement.label_span.col == 3


def test_syntax_error_names_what_was_expected() -> None:
    with pytest.raises(CnnError) as caught:
        parse("network t {\n  input x: 3 x 8 x 8\n  conv 8 3x3 ->\n}\n")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code is Code.SYNTAX and diagnostic.span.line == 4
    assert "expected" in diagnostic.message


def test_unexpected_end_points_past_the_last_line() -> None:
    with pytest.raises(CnnError) as caught:
        parse("const a = 2 +")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code is Code.UNEXPECTED_END
    assert (diagnostic.span.line, diagnostic.span.col) == (1, len("const a = 2 +") + 1)


def test_unexpected_character() -> None:
    with pytest.raises(CnnError) as caught:
        parse("network t {\n  conv 8 3x3 @\n}")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code is Code.SYNTAX and "'@'" in diagnostic.message
    assert (diagnostic.span.line, diagnostic.span.col) == (2, 14)


def test_nesting_limit_is_reported_at_the_bracket() -> None:
    deep = "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1)
    with pytest.raises(CnnError) as caught:
        parse(f"const a = {deep}\n")
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code is Code.LIMIT
    assert (diagnostic.span.line, diagnostic.span.col) == (1, 11 + MAX_NESTING)
    parse(f"const a = {'(' * MAX_NESTING}1{')' * MAX_NESTING}\n")  # the limit itself is fine


def test_brackets_in_comments_and_strings_do_not_count() -> None:
    parse("# " + "(" * 500 + "\nimport \"" + "{" * 500 + ".cnn\"\n")


def test_byte_order_mark_and_crlf_are_accepted() -> None:
    network = load("\ufeffnetwork t {\r\n  input x: 3 x 8 x 8\r\n  relu\r\n}\r\n")
    assert network.nodes[-1].name == "relu1"


def test_empty_and_comment_only_files_have_no_network() -> None:
    for text in ("", "# nothing here\n", ";;\n"):
        result = compiler.check(text)
        assert [d.code for d in result.diagnostics] == [Code.NO_NETWORK]
