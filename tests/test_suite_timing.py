"""No test depends on wall-clock time: no hypothesis deadline, no short child-process timeout.

The suite failed once on a loaded machine (both cores busy); these checks keep timing limits
from coming back. Speed targets belong in ``benchmarks/``, which print ratios instead.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, settings

TESTS = Path(__file__).resolve().parent
MIN_TIMEOUT_S = 900  # a timeout only turns a hang into a failure


def _sources() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in TESTS.rglob("*.py")}


def test_hypothesis_runs_without_deadlines_or_speed_checks() -> None:
    assert settings.default.deadline is None
    assert HealthCheck.too_slow in settings.default.suppress_health_check


def test_no_test_sets_a_deadline_or_a_short_timeout() -> None:
    found = []
    for path, text in _sources().items():
        if path.name == Path(__file__).name:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            deadline = re.search(r"deadline\s*=\s*(?!None)[\w.]+", line)
            timeout = re.search(r"\btimeout\s*=\s*(\d+(?:\.\d+)?)", line)
            if deadline or (timeout and float(timeout.group(1)) < MIN_TIMEOUT_S):
                found.append(f"{path.relative_to(TESTS)}:{number}: {line.strip()}")
    assert found == []
