"""Hypothesis properties of the front end.

(a) Random convolution and pooling chains get exactly the sizes of PyTorch's closed formulas,
    written here independently of cnndsl.shapes; the same chain on symbolic sizes, bound after
    the fact, agrees with them too.
(b) Random edits of valid specs (tokens or characters deleted, duplicated, swapped, inserted)
    give a clean result or positioned diagnostics: never another exception, never a hang.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnndsl import compiler, ir
from cnndsl.diagnostics import Code, Diagnostic, render_all
from cnndsl.symbolic import substitute

SPECS = Path(__file__).resolve().parent.parent / "specs"
FAST = settings(max_examples=120, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


# (a) shapes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    kind: str  # conv | max | avg
    kernel: int
    stride: int
    pad: int
    dilation: int = 1
    ceil: bool = False

    def text(self) -> str:
        if self.kind == "conv":
            return (f"conv 4 {self.kernel}x{self.kernel} /{self.stride} pad {self.pad} "
                    f"dilation={self.dilation}")
        return (f"{self.kind}pool {self.kernel}x{self.kernel} /{self.stride} pad {self.pad}"
                + (" ceil" if self.ceil else ""))


def expected_size(size: int, layer: Layer) -> int | str:
    """PyTorch's output size, or the slug of the error the front end must report."""
    k, s, p, d = layer.kernel, layer.stride, layer.pad, layer.dilation
    if layer.kind == "conv":
        span = d * (k - 1) + 1
        if size + 2 * p < span:
            return "kernel-too-large"
        return (size + 2 * p - span) // s + 1
    if 2 * p > k:  # PyTorch: pad should be at most half of the kernel size
        return "bad-value"
    if size + 2 * p < k:
        return "kernel-too-large"
    if not layer.ceil:
        return (size + 2 * p - k) // s + 1
    out = -(-(size + 2 * p - k) // s) + 1
    if (out - 1) * s >= size + p:  # the last window may not start in the right padding
        out -= 1
    return out


layers = st.one_of(
    st.builds(Layer, st.just("conv"), st.integers(1, 7), st.integers(1, 4), st.integers(0, 3),
              st.integers(1, 3)),
    st.builds(Layer, st.sampled_from(["max", "avg"]), st.integers(1, 5), st.integers(1, 4),
              st.integers(0, 2), st.just(1), st.booleans()),
)


def chain_spec(layers_: list[Layer], size: str) -> str:
    """4 input channels and 4 filters per conv: only the spatial sizes change."""
    body = "\n".join(f"  {layer.text()}" for layer in layers_)
    return f"network chain {{\n  input image: 4 x {size}\n{body}\n}}\n"


@FAST
@given(height=st.integers(1, 64), width=st.integers(1, 64),
       chain=st.lists(layers, min_size=1, max_size=6))
def test_conv_pool_chains_follow_the_closed_formulas(height: int, width: int,
                                                     chain: list[Layer]) -> None:
    sizes: list[int | str] = [height, width]
    failed_at = None
    for index, layer in enumerate(chain):
        sizes = [expected_size(s, layer) if isinstance(s, int) else s for s in sizes]
        errors = [s for s in sizes if isinstance(s, str)]
        if errors:
            failed_at = (index, errors[0])
            break
    result = compiler.check(chain_spec(chain, f"{height} x {width}"))
    if failed_at is None:
        assert result.ok, render_all(result.diagnostics, result.sources)
        assert result.network is not None
        assert result.network.nodes[-1].shape == (4, *sizes)
    else:
        index, slug = failed_at
        (diagnostic,) = result.diagnostics
        assert diagnostic.code.slug == slug
        assert diagnostic.span.line == 3 + index


@FAST
@given(height=st.integers(1, 48), width=st.integers(1, 48),
       chain=st.lists(layers, min_size=1, max_size=5))
def test_symbolic_chains_agree_with_bound_sizes(height: int, width: int,
                                                chain: list[Layer]) -> None:
    concrete = compiler.check(chain_spec(chain, f"{height} x {width}"))
    symbolic = compiler.check(chain_spec(chain, "H x W"))
    if not concrete.ok or not symbolic.ok:
        return  # errors depend on the size; the closed-formula test covers them
    assert concrete.network is not None and symbolic.network is not None
    bindings = {"H": height, "W": width}
    for bound, open_ in zip(concrete.network.nodes, symbolic.network.nodes, strict=True):
        assert open_.shape is not None
        assert bound.shape == tuple(substitute(d, bindings) for d in open_.shape), bound.name


# (b) robustness under random edits -----------------------------------------------------------

SMALL = """const base = 8
block unit(width, stride = 1) {
  residual {
    conv width 3x3 /stride pad 1 -> bn -> relu
    conv width 3x3 pad 1 -> bn
  }
  -> relu
}
network small(classes = 10) {
  input image: 3 x H x W
  stem: conv base 3x3 pad 1 -> bn -> relu
  a: unit(base) x 2
  b: unit(base*2, stride = 2)
  side: a -> concat { conv 4 1x1 | maxpool 3x3 /2 pad 1 ceil }
  head: b -> gap -> flatten -> dropout 0.2 -> linear classes
  output head, side
  expect params < 1M
  expect head == N x 10
}
"""
SOURCES = [SMALL, (SPECS / "resnet50.cnn").read_text(), (SPECS / "googlenet.cnn").read_text()]
TOKEN = re.compile(r"\s+|\w+|->|//|==|.", re.DOTALL)
JUNK = st.sampled_from([*"(){}|,;:=/*+-x#\"\n\t 0123456789",
    "->", "conv", "x 0", "x 999999999", "residual {", "}", "input", "output", "expect", "block",
    "network", "import \"a.cnn\"", "99999999999999999999999", "\x00", "é", "(" * 120, "in", "/0",
])


def _assert_clean(text: str) -> None:
    result = compiler.check(text, file=str(SPECS / "edited.cnn"), input="H=32,W=32")
    for diagnostic in result.diagnostics:
        assert isinstance(diagnostic, Diagnostic) and isinstance(diagnostic.code, Code)
        assert diagnostic.span.line >= 1 and diagnostic.span.col >= 1
    render_all(result.diagnostics, result.sources)
    if result.network is not None:
        ir.to_json(result.network)


@st.composite
def token_edits(draw: st.DrawFn) -> str:
    tokens = TOKEN.findall(draw(st.sampled_from(SOURCES)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(tokens) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "replace"]))
        if op == "delete":
            del tokens[i]
        elif op == "duplicate":
            tokens.insert(i, tokens[i])
        elif op == "swap":
            j = draw(st.integers(0, len(tokens) - 1))
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif op == "insert":
            tokens.insert(i, draw(JUNK))
        else:
            tokens[i] = draw(st.sampled_from(tokens))
        if not tokens:
            tokens = [""]
    return "".join(tokens)


@st.composite
def character_edits(draw: st.DrawFn) -> str:
    text = list(draw(st.sampled_from(SOURCES[:2])))
    for _ in range(draw(st.integers(1, 6))):
        i = draw(st.integers(0, len(text) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if op == "delete":
            del text[i]
        elif op == "duplicate":
            text.insert(i, text[i])
        elif op == "swap" and i + 1 < len(text):
            text[i], text[i + 1] = text[i + 1], text[i]
        else:
            text.insert(i, draw(st.characters(codec="utf-8")))
        if not text:
            text = [" "]
    return "".join(text)


@FAST
@given(token_edits())
def test_token_edits_give_diagnostics_not_tracebacks(text: str) -> None:
    _assert_clean(text)


@FAST
@given(character_edits())
def test_character_edits_give_diagnostics_not_tracebacks(text: str) -> None:
    _assert_clean(text)


@settings(max_examples=60, derandomize=True)
@given(st.text(min_size=0, max_size=200))
def test_arbitrary_text_gives_diagnostics_not_tracebacks(text: str) -> None:
    _assert_clean(text)


def test_residual_projection_stride_is_the_smallest_that_fits() -> None:
    from cnndsl.frontend.composites import integer_ratio as _integer_ratio

    def brute_force(before: int, after: int) -> int | None:
        return next((s for s in range(2, before + 1) if -(-before // s) == after), None)

    for before in range(0, 200):
        for after in range(-1, 200):
            assert _integer_ratio(before, after) == brute_force(before, after), (before, after)
    # a billion-pixel side is answered at once (a loop over strides took minutes)
    network = compiler.load("network n {\n  input x: 3 x 1000000000 x 1000000000\n"
                          "  residual { gap }\n}\n")
    assert network.output_shapes() == {"output": (3, 1, 1)}
