"""Every ```cnn example in docs/language.md is a complete spec that checks cleanly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cnndsl

DOC = Path(__file__).resolve().parent.parent / "docs" / "language.md"
EXAMPLES = re.findall(r"```cnn\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_reference_has_examples() -> None:
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_checks(index: int) -> None:
    result = cnndsl.check(EXAMPLES[index], file=f"language.md#{index}")
    messages = [f"{d.span.line}:{d.span.col} {d.message}" for d in result.diagnostics]
    assert result.ok, messages
    assert result.network is not None and result.network.expects
    assert all(expect.ok for expect in result.network.expects)
