"""The README's Python API example prints what its comments say it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _api_example() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert block is not None
    return block.group(1).splitlines()


def test_the_api_example_prints_its_comments(monkeypatch: pytest.MonkeyPatch) -> None:
    # The lines up to the first that needs more than a spec (torch, a reference model)
    monkeypatch.chdir(ROOT)
    lines = []
    for line in _api_example():
        if line.startswith("result = "):
            break
        lines.append(line)
    checked = 0
    namespace: dict[str, object] = {}
    for line in lines:
        code, _, comment = line.partition("#")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(code, namespace)
        if code.startswith("print("):
            assert out.getvalue().strip() == comment.strip(), line
            checked += 1
    assert checked == 2
