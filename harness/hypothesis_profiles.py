"""Hypothesis profiles: ``ci`` (derandomised), ``dev`` (default locally), ``thorough``.

No per-example deadline anywhere: the first call of a shape JIT-compiles (JAX, XLA, tf.function)
and would trip any deadline. Select with HYPOTHESIS_PROFILE or pytest --hypothesis-profile."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from harness.errors import HarnessError

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
               print_blob=True)

settings.register_profile("ci", max_examples=12, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=40, **_COMMON)
settings.register_profile("thorough", max_examples=400, **_COMMON)


PROFILES = ("ci", "dev", "thorough")


def chosen(name: str | None = None) -> str:
    """The profile to use (``name``, else HYPOTHESIS_PROFILE, else ci under CI, else dev),
    validated: an unknown name is a one-line ``HarnessError``."""
    name = name or os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
    if name not in PROFILES:
        raise HarnessError(f"Hypothesis profile {name!r} is unknown: use one of {', '.join(PROFILES)} "
                           f"(HYPOTHESIS_PROFILE or --hypothesis-profile)")
    return name


def load_default() -> str:
    name = chosen()
    settings.load_profile(name)
    return name
