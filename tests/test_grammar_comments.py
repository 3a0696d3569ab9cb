"""Comments may contain the continuation tokens '->' and '|' without continuing anything."""

from __future__ import annotations

import cnndsl

SPEC = """\
# a | b -> c at the top
network commented {
  input image: 3 x 8 x 8     # 3 -> 4 channels below
  conv 4 3x3 pad 1           # a | b
  # -> not a continuation
  -> relu
  head: gap -> flatten -> linear 2
}
"""


def test_comments_with_arrows_and_bars() -> None:
    network = cnndsl.load(SPEC)
    assert [n.name for n in network.nodes][:3] == ["image", "conv1", "relu1"]
    assert network.output_shapes() == {"head": (2,)}
