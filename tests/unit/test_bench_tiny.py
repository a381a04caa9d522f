"""The timed path end to end, in seconds: the tiny profile on NumPy plus a plug-in that raises.

CI runs this on every change, so the timer, the timing self-check, both one-hot guards and the
error rows are exercised and their records asserted, not only the untimed smoke path."""

import json
import math
import os
import statistics
import subprocess
import sys
import timeit
from pathlib import Path

import numpy as np
import pytest

from harness.bench.selfcheck import SELF_CHECK_RATIO
from harness.bench.sweep import FLOOR_SHAPE, get_profile
from harness.schema import read_bench_csv

REPO = Path(__file__).resolve().parents[2]
TINY = get_profile("tiny")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("results") / "tiny"
    env = {**os.environ, "EMBEDDING_HARNESS_MACHINE_ID": "bench-tiny-test",
           "EMBEDDING_HARNESS_ADAPTERS": "numpy-*,fault_adapters:large_tables",
           "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "unit"), str(REPO)])}
    env.pop("EMBEDDING_HARNESS_BENCH_RUN_ID", None)
    run = subprocess.run([sys.executable, "-m", "harness.bench", "all", "--profile", "tiny", "--out", str(out)],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    rows = read_bench_csv((out / "bench.csv").read_text())
    meta = json.loads((out / "bench_meta.json").read_text())
    return run, out, rows, meta


def _row(rows, adapter, pass_, vocab, distribution="uniform"):
    [row] = [r for r in rows if (r["adapter"], r["pass"], r["vocab"], r["distribution"]) == (adapter, pass_, vocab,
                                                                                          distribution)]
    return row


def test_a_part_with_error_rows_fails_the_run_and_says_so(tiny):
    run, out, _, meta = tiny
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    assert meta["failed_parts"] == {"plugins": "4 benchmark(s) raised an error"}
    assert "**1 part(s) FAILED**: plugins: 4 benchmark(s) raised an error" in (out / "BENCH.md").read_text()


def test_error_rows_carry_the_exception_and_the_other_rows_still_measure(tiny):
    _, _, rows, _ = tiny
    for vocab in (4096, 32768, 262144):  # FailsOnLargeTables raises past 1000 rows, in forward only
        row = _row(rows, "fault-large-tables", "forward", vocab)
        assert row["status"] == "error"
        assert row["skip_reason"] == "RuntimeError: kernel launch failed: table too large"
        assert row["median_s"] is None
    assert _row(rows, "fault-large-tables", "forward", 256)["status"] == "ok"
    assert _row(rows, "fault-large-tables", "forward_backward", 4096)["status"] == "ok"  # the fault is in forward


def test_timed_rows_have_rounds_within_the_profile_and_a_spread(tiny):
    _, _, rows, _ = tiny
    gather = [r for r in rows if r["adapter"] == "numpy-gather"]
    assert len(gather) == 2 * 5 + 1 + 2  # 2 passes x 5 vocabularies, the stream case, 2 floor rows
    # A loaded machine may push a large case past the 4 ms per-call limit; nothing else may stop a row.
    assert all(r["status"] == "ok" or "per-call limit" in r["skip_reason"] for r in gather)
    assert all(r["status"] == "ok" for r in gather if r["vocab"] <= 4096)
    timed = [r for r in gather if r["status"] == "ok"]
    for row in timed:
        assert TINY.min_rounds <= row["rounds"] <= TINY.max_rounds, row
        assert 0 < row["median_s"] < TINY.max_call_s, row
        assert row["iqr_s"] is not None and row["iqr_s"] < row["median_s"], row
    # Cold forward rows fill one preallocated output (NumPy's take(out=)); the others allocate per call.
    assert all(r["output"] == ("preallocated" if r["distribution"] == "uniform-stream" else "per call")
               for r in timed)
    floors = [r for r in timed if (r["vocab"], r["dim"], r["n_ids"]) == FLOOR_SHAPE]
    assert {r["pass"] for r in floors} == {"forward", "forward_backward"}


def test_the_recorded_median_agrees_with_a_bare_timeit_of_the_same_gather(tiny):
    """An independent clock: a harness that scaled or mis-divided its times would be off by
    orders of magnitude; the same machine and call agree within a small factor."""
    _, _, rows, _ = tiny
    row = _row(rows, "numpy-gather", "forward", 4096)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4096, 16)).astype(np.float32)
    ids = rng.integers(0, 4096, 1024).astype(np.int32)
    ours = min(timeit.repeat(lambda: w[ids], number=2000, repeat=5)) / 2000
    assert 0.25 < row["median_s"] / ours < 4, (row["median_s"], ours)


def test_the_self_check_is_recorded_for_every_part_and_holds(tiny):
    _, out, _, meta = tiny
    checks = {c["part"]: c for c in meta["self_check"]}
    assert set(checks) == {"numpy", "plugins"}
    for part, check in checks.items():
        assert check["timed"] is True and check["case"] == "numpy-gather V=65536 D=64 N=16384 int32"
        paired = next(e for e in meta["parts"][part]["self_check"] if "timeit_median_s" in e)
        ratios = [h / b for h, b in zip(paired["harness_samples_s"], paired["timeit_samples_s"], strict=True)]
        assert check["paired"] is True and paired["timeit_repeat"] == paired["rounds"] == len(ratios)
        assert math.isclose(check["ratio"], statistics.median(ratios))  # round by round, not of the medians
        assert SELF_CHECK_RATIO[0] < check["ratio"] < SELF_CHECK_RATIO[1]  # the bound the part itself applies
    assert "| numpy | numpy-gather V=65536 D=64 N=16384 int32 |" in (out / "BENCH.md").read_text()


def test_the_memory_guard_and_the_time_guard_skip_one_hot_before_running_it(tiny):
    _, _, rows, meta = tiny
    assert meta["onehot_mem_budget"] == TINY.onehot_budget
    for pass_ in ("forward", "forward_backward"):
        big = _row(rows, "numpy-onehot", pass_, 262144)
        assert big["status"] == "skipped" and "--onehot-mem-budget" in big["skip_reason"]
        slow = _row(rows, "numpy-onehot", pass_, 32768)  # fits the budget, but ~1 GFLOP per call
        assert slow["status"] == "skipped"
        assert "per call limit" in slow["skip_reason"] or "per-call limit" in slow["skip_reason"]
        assert _row(rows, "numpy-onehot", pass_, 4)["status"] == "ok"
