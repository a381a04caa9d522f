"""Every selected adapter over the profile's cases, plus the method's self-check.

The work is in ``harness.bench.suite``; these functions only connect it to pytest-benchmark,
so that ``--benchmark-disable`` turns the suite into a smoke test of every case."""

from __future__ import annotations

import math


def test_embedding(benchmark, run_case, bench_key):
    result = run_case(benchmark, bench_key)
    assert result["median_s"] > 0 and math.isfinite(result["median_s"])
    assert result["compile_s"] >= 0


def test_method_self_check(benchmark, bench_session, self_check_repeat):
    adapter_id, repeat = self_check_repeat
    entry = bench_session.self_check(benchmark, repeat, adapter_id)
    assert entry["harness_median_s"] > 0
    if "timeit_median_s" in entry:
        # Same call, same process: the harness must not be off by a large factor.
        assert entry["ok"], entry["problem"]
