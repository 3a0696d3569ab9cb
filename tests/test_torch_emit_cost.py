"""The emitter's work grows linearly with the layers: counted, not timed (no test uses a clock)."""

from __future__ import annotations

from typing import Any

import pytest

import cnndsl
from cnndsl.backends.torch import emit


class CountingList(list[Any]):
    """A list that counts how often it is iterated over from the start."""

    scans = 0

    def __iter__(self) -> Any:
        CountingList.scans += 1
        return super().__iter__()


def scans_of_members(layers: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many times emitting a flat network of ``layers`` layers walks a class's members."""
    body = "\n".join(f"  l{i}: relu" if i % 2 else f"  l{i}: conv 4 3x3 pad 1"
                     for i in range(layers))
    network = cnndsl.load(f"network flat {{\n  input image: 4 x 8 x 8\n{body}\n}}\n")
    original = emit.Body.__init__

    def counted(self: emit.Body, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.members = CountingList(self.members)

    with monkeypatch.context() as patched:
        patched.setattr(emit.Body, "__init__", counted)
        patched.setattr(CountingList, "scans", 0)
        emit.emit(network)
        return CountingList.scans


def test_members_are_walked_a_fixed_number_of_times_whatever_the_layer_count(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Finding each forward step's member by scanning every member made emitting quadratic
    # (30 s for 10,000 layers); looked up by segment, the walks do not grow with the layers.
    assert scans_of_members(50, monkeypatch) == scans_of_members(400, monkeypatch)
