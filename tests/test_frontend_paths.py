"""Path labels (``features.0``, ``model.0.conv``), numbered chains (``label[]:``), references to
tensors by path, every repeat instance (``m.*``) and ``expect`` on paths and output names."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

import cnndsl
from cnndsl.syntax import ast
from cnndsl.syntax.format import format_source
from cnndsl.syntax.parser import parse


def names(spec: str) -> list[str]:
    return [node.name for node in cnndsl.load(spec).nodes]


def test_a_dotted_label_is_the_layers_path() -> None:
    spec = """
network n {
  input image: 3 x 8 x 8
  model.0.conv: conv 4 3x3 pad 1
  model.0.act: relu
  expect model.0.conv == N x 4 x 8 x 8
}
"""
    assert names(spec) == ["image", "model.0.conv", "model.0.act"]


def test_a_numbered_chain_numbers_every_layer_as_nn_sequential_does() -> None:
    spec = """
network n {
  input image: 3 x 16 x 16
  features[]: conv 4 3x3 pad 1 -> relu -> maxpool 2x2 -> conv 8 3x3 pad 1 x 2
    -> residual { conv 8 3x3 pad 1 } -> sepconv 8 3x3 pad 1
  expect features.4 == N x 8 x 8 x 8
}
"""
    assert names(spec)[1:] == [
        "features.0", "features.1", "features.2", "features.3", "features.4",
        "features.5.conv1", "features.5.add1", "features.6.depthwise", "features.6.pointwise",
    ]


def test_a_numbered_chain_of_one_layer_is_numbered_too() -> None:
    assert names("network n {\n input x: 3 x 4 x 4\n head[]: conv 2 1x1\n}")[1:] == ["head.0"]


def test_paths_name_tensors_inside_the_body() -> None:
    spec = """
block unit(c) {
  a: conv c 1x1
  b: relu
  out: concat(a, b)
}
network n {
  input image: 3 x 8 x 8
  blocks: unit(4) -> unit(4)
  skip: concat(blocks.0.a, blocks.1, blocks.0.out)
  expect skip == N x 20 x 8 x 8
  expect blocks.0 == N x 8 x 8 x 8
  expect blocks.1.a == N x 4 x 8 x 8
}
"""
    network = cnndsl.load(spec)
    concat = network.node("skip")
    assert concat.inputs == ["blocks.0.a", "blocks.1.out", "blocks.0.out"]


def test_a_path_can_start_a_chain() -> None:
    spec = """
network n {
  input image: 3 x 8 x 8
  features[]: conv 4 3x3 pad 1 -> relu -> conv 4 3x3 pad 1
  side: features.1 -> conv 2 1x1
  output features, side
}
"""
    assert cnndsl.load(spec).node("side").inputs == ["features.1"]


def test_every_repeat_instance_is_addressable() -> None:
    spec = """
block unit(c) {
  conv c 3x3 pad 1 -> relu
}
network n {
  input image: 3 x 8 x 8
  m: unit(4) x 3
  layers: conv 4 1x1 x 2
  all: concat(image, m.*, layers.*)
  expect m.1 == N x 4 x 8 x 8
  expect layers.conv2 == N x 4 x 8 x 8
  expect all == N x 23 x 8 x 8
}
"""
    network = cnndsl.load(spec)
    assert network.node("all").inputs == [
        "image", "m.0.relu1", "m.1.relu1", "m.2.relu1", "layers.conv1", "layers.conv2",
    ]
    assert all(e.ok for e in cnndsl.check(spec).network.expects)  # type: ignore[union-attr]


def test_expect_on_paths_instances_and_output_names() -> None:
    spec = """
block pair(c) {
  conv1: conv c 3x3 pad 1
  relu
}
network n {
  input image: 3 x 8 x 8
  layer3: pair(4) -> pair(8)
  conv 2 1x1
  expect layer3.1.conv1 == N x 8 x 8 x 8
  expect layer3.0 == N x 4 x 8 x 8
  expect output == N x 2 x 8 x 8
  expect layer3.0.conv1 != N x 8 x 8 x 8
}
"""
    result = cnndsl.check(spec)
    assert result.ok and result.network is not None
    assert [e.ok for e in result.network.expects] == [True] * 4


def test_an_unknown_path_in_expect_suggests_a_near_one() -> None:
    spec = """
network n {
  input image: 3 x 8 x 8
  features[]: conv 4 3x3 -> relu
  expect features.3 == N x 4 x 6 x 6
}
"""
    result = cnndsl.check(spec)
    assert not result.ok
    assert "nothing named 'features.3'" in result.diagnostics[0].message


def test_the_formatter_keeps_paths_numbered_labels_splats_and_functions() -> None:
    text = ("network n {\n  input image: 3 x 8 x 8\n  f[]:  conv max(2,3) 1x1 ->relu\n"
            "  m: conv 3 1x1 x 2\n  c: concat(f, m.*)\n  expect m.conv1 == N x 3 x 8 x 8\n}\n")
    formatted = format_source(text)
    assert "  f[]: conv max(2, 3) 1x1 -> relu\n" in formatted
    assert "  c: concat(f, m.*)\n" in formatted
    assert format_source(formatted) == formatted


SEGMENT = st.one_of(
    st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s != "x"),
    st.integers(0, 120).map(str),
)
KEYWORDS = {"x", "input", "output", "expect", "const", "block", "network", "import", "pad",
            "shortcut", "in"}


@st.composite
def paths(draw: st.DrawFn) -> str:
    first = draw(st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
                 .filter(lambda s: s not in KEYWORDS))
    rest = draw(st.lists(SEGMENT, min_size=1, max_size=4))
    return ".".join([first, *rest])


@settings(deadline=None, max_examples=60)
@given(paths())
def test_any_module_path_is_a_label_and_names_its_layer(path: str) -> None:
    spec = (f"network n {{\n  input image: 3 x 8 x 8\n  {path}: conv 4 1x1\n"
            f"  expect {path} == N x 4 x 8 x 8\n}}\n")
    statement = parse(spec).items[0].body.statements[1]  # type: ignore[union-attr]
    assert isinstance(statement, ast.ChainStatement) and statement.label == path
    result = cnndsl.check(spec)
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.network is not None and result.network.nodes[1].name == path
    assert format_source(spec) == spec


@settings(deadline=None, max_examples=40)
@given(st.lists(st.sampled_from(["conv 4 1x1", "relu", "maxpool 1x1", "bn", "dropout 0.1"]),
                min_size=1, max_size=8),
       st.sampled_from(string.ascii_lowercase.replace("x", "")))
def test_a_numbered_chain_gives_consecutive_indices(layers: list[str], label: str) -> None:
    spec = (f"network n {{\n  input image: 3 x 8 x 8\n  {label}[]: " + " -> ".join(layers)
            + "\n}\n")
    network = cnndsl.load(spec)
    assert [n.name for n in network.nodes[1:]] == [f"{label}.{i}" for i in range(len(layers))]
