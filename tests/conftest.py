"""Suite-wide settings: nothing may depend on how fast the machine is.

Hypothesis' deadlines and its too-slow health check measure wall-clock time; on a loaded CI
machine (both cores busy) they fail tests that are correct. The profile switches both off for
every test; a test's own ``@settings`` inherits from it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "cnndsl",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("cnndsl")
