"""Hypothesis profiles: ``ci`` (derandomised), ``dev`` (default locally), ``thorough``.

No per-example deadline anywhere: the first call of a shape JIT-compiles (JAX, XLA, tf.function)
and would trip any deadline. Select with HYPOTHESIS_PROFILE or pytest --hypothesis-profile."""

from __future__ import annotations

import os
import re
import tempfile

from hypothesis import HealthCheck, Phase, settings
from hypothesis.configuration import set_hypothesis_home_dir, storage_directory
from hypothesis.database import DirectoryBasedExampleDatabase

from harness.errors import HarnessError

SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]
_COMMON = dict(deadline=None, suppress_health_check=SUPPRESSED, print_blob=True)

# ci: no example database (nothing written into the checkout) and no explain phase (it
# triples shrinking time and only names lines of the harness).
settings.register_profile("ci", max_examples=12, derandomize=True, database=None,
                          phases=tuple(p for p in Phase if p != Phase.explain), **_COMMON)
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
    if name == "ci" and not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        # Hypothesis caches what it learns (constants) even without a database: in ci, keep
        # it out of the checkout.
        set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "embedding-harness-hypothesis"))
    return name


def database_for(adapter_id: str):
    """One example database per adapter (None where the profile keeps none): a failure saved
    for one adapter is never replayed on another, so results do not depend on run order."""
    if settings.default.database is None:
        return None
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", adapter_id)
    return DirectoryBasedExampleDatabase(storage_directory("examples", safe).path)
