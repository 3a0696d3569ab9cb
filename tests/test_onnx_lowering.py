"""The ONNX lowering registry (cnndsl/backends/onnx/lowering.py)."""

from __future__ import annotations

import pytest

from cnndsl.backends.onnx import LOWERINGS, lowering, lowerings
from cnndsl.ops import REGISTRY


def test_a_kind_registers_one_lowering_only() -> None:
    before = dict(LOWERINGS)
    with pytest.raises(ValueError, match="'conv' already has an ONNX lowering"):
        lowering("conv")(lambda g, node: None)
    assert before == LOWERINGS


def test_each_lowering_lives_in_the_module_of_its_kinds_family() -> None:
    # lowerings/<family>.py mirrors ops/<family>.py, so a new kind's lowering has one place
    for kind, function in LOWERINGS.items():
        family = REGISTRY[kind].__module__.rsplit(".", 1)[1]
        module = getattr(lowerings, family)
        assert function.__module__ in (module.__name__, lowerings.tensor.__name__), kind
        if function.__module__ != module.__name__:  # heads reuse the tensor identity
            assert module.__name__.endswith("heads"), kind
