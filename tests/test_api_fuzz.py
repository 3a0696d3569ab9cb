"""A bounded, seeded fuzz run of the API's overrides: no exception escapes ``cnndsl.check``.

``check`` is documented never to raise for problems in what it is given. Random ``input=``,
``params=`` and ``sizes=`` values (huge, zero, negative, non-finite, of the wrong type, or
garbage text) go through it; it must return a result, and a result that is not ok must say why
in positioned diagnostics. Hypothesis runs derandomized, without deadlines, so the run is the
same every time and independent of the machine's speed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnndsl

ROOT = Path(__file__).resolve().parents[1]

SYMBOLIC = """network symbolic(classes = 10, width = 8) {
  input image: 3 x H x W
  conv width 3x3 pad 1 -> bn -> relu
  conv (width * 2) 3x3 /2 pad 1 -> relu
  pool: adaptive_avgpool 1x1 -> flatten
  logits: linear classes
}
"""
SPECS: list[Any] = [ROOT / "specs" / "lenet5.cnn", ROOT / "specs" / "alexnet.cnn", SYMBOLIC]

BIG = [2**31, 2**32, 2**62, 2**62 + 1, 2**63, 2**64, 10**30, 10**400]
integers = st.one_of(st.integers(-3, 300), st.sampled_from(BIG), st.integers())
values = st.one_of(
    integers,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([True, False, None, "", "same", "3x3", "1e999", [], (), {}, [1, 2], (3, 3)]),
    st.text(max_size=8),
)
dims_text = st.lists(st.one_of(st.integers(0, 300), st.sampled_from(BIG)), min_size=1,
                     max_size=5).map(lambda dims: "x".join(map(str, dims)))
input_texts = st.one_of(
    st.none(),
    dims_text,
    st.builds(lambda h, w: f"H={h},W={w}", integers, integers),
    st.text(alphabet="0123456789xHW=,- .e", max_size=20),
)
names = st.sampled_from(["classes", "width", "H", "W", "N", "image", "nothing", "in_channels"])
params = st.one_of(st.none(), st.dictionaries(names, values, max_size=3))
sizes = st.one_of(st.none(), st.dictionaries(names, st.one_of(integers, values), max_size=3))


@settings(max_examples=300, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.sampled_from(SPECS), input=input_texts, params=params, sizes=sizes)
def test_no_exception_escapes_check(spec: Any, input: str | None, params: dict[str, Any] | None,
                                    sizes: dict[str, Any] | None) -> None:
    result = cnndsl.check(spec, input=input, params=params, sizes=sizes)  # must not raise
    if not result.ok:
        assert any(d.severity == "error" for d in result.diagnostics)
        for diagnostic in result.diagnostics:
            assert diagnostic.message and diagnostic.span.line >= 1
