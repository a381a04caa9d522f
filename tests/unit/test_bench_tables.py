"""bench.csv (exact columns, empty numbers when skipped), rows from part records, BENCH.md."""

import csv
import io
import math

import pytest

from harness import schema
from harness.bench import rows as rows_mod
from harness.bench.selfcheck import self_check_summary
from harness.schema import bench_csv_text, read_bench_csv
from harness.views import bench as tables
from harness.views import formats

EXPECTED_COLUMNS = (
    "adapter, framework, variant, device, dtype, index_dtype, pass, vocab, dim, n_ids, pooling, distribution, "
    "dup_rate, median_s, iqr_s, rounds, lookups_per_s, gbps, pct_copy_bw, pct_peak_bw, gflops, peak_mem_bytes, "
    "table_bytes, fits_in_cache, compile_s, wall_median_s, output, status, skip_reason, part, run_id"
).split(", ")


def _record(cases, adapters=None, part="core", profile="quick"):
    return {
        "part": part, "profile": profile, "run_id": "r1", "timed": True,
        "machine": {"machine_id": "m", "l2_cache_bytes": 1 << 20, "l3_cache_bytes": 32 << 20},
        "copy_bandwidth": {"gbps": 20.0},
        "adapters": adapters or {
            "a-gather": {"framework_label": "a", "framework": "a", "variant": "gather", "device": "cpu",
                         "gradient": "dense", "gather_twin": "a-gather"},
            "a-onehot": {"framework_label": "a", "framework": "a", "variant": "onehot", "device": "cpu",
                         "gradient": "dense", "gather_twin": "a-gather"},
        },
        "cases": cases,
    }


def _case(adapter, vocab, status="ok", median=1e-3, reason=None, pass_="forward"):
    case = {"adapter": adapter, "pass": pass_, "dtype": "float32", "vocab": vocab, "dim": 64, "n_ids": 1000,
            "distribution": "uniform", "index_dtype": "int32", "unique": 100, "dup_rate": 0.9,
            "status": status, "reason": reason}
    if status == "ok":
        case.update(median_s=median, iqr_s=median / 10, rounds=7, iterations=3, wall_median_s=median,
                    compile_s=0.01, peak_mem_bytes=4096)
    return case


def test_csv_has_exactly_the_agreed_columns_in_order():
    assert list(rows_mod.COLUMNS) == EXPECTED_COLUMNS
    text = bench_csv_text([])
    assert next(csv.reader(io.StringIO(text))) == EXPECTED_COLUMNS


def test_rows_derive_figures_and_leave_skipped_numbers_empty():
    record = _record([_case("a-gather", 100), _case("a-onehot", 100, median=2e-3),
                      _case("a-onehot", 10**7, status="skipped", reason="one-hot matrix too big")])
    rows = rows_mod.build_rows([record])
    ok = rows[0]
    # 1000 ids x (256 B row read + 256 B row write + 4 B id) = 516000 B in 1e-3 s: 0.516 GB/s, 2.58 % of 20
    assert ok["gbps"] == pytest.approx(0.516, rel=1e-12) and ok["lookups_per_s"] == pytest.approx(1e6, rel=1e-12)
    assert ok["pct_copy_bw"] == pytest.approx(2.58, rel=1e-12)
    # the table 100 x 64 x 4 = 25600 B; touched: 100 rows 25600 + output 256000 + ids 4000 = 285600 <= 1 MiB L2
    assert ok["table_bytes"] == 25_600 and ok["fits_in_cache"] == "L2"
    # one-hot: 2 x 1000 x 100 x 64 = 12.8e6 FLOP in 2e-3 s: 6.4 GFLOP/s; same bytes in twice the time
    assert ok["gflops"] is None and rows[1]["gflops"] == pytest.approx(6.4, rel=1e-12)
    assert rows[1]["gbps"] == pytest.approx(0.258, rel=1e-12)
    assert (ok["median_s"], ok["iqr_s"], ok["rounds"], ok["peak_mem_bytes"]) == (1e-3, 1e-4, 7, 4096)
    skipped = rows[2]
    assert skipped["status"] == "skipped" and skipped["skip_reason"] == "one-hot matrix too big"
    assert all(skipped[k] is None for k in rows_mod.MEASURED)
    # a 2.4 GiB table, but one batch of 1000 ids touches 100 rows and a 250 KiB output: hot
    assert skipped["table_bytes"] == 2_560_000_000 and skipped["fits_in_cache"] == "L2"
    parsed = read_bench_csv(bench_csv_text(rows))
    assert [r["status"] for r in parsed] == ["ok", "ok", "skipped"]
    assert parsed[2]["median_s"] is None and parsed[0]["median_s"] == pytest.approx(1e-3)
    assert parsed[0]["vocab"] == 100 and parsed[0]["part"] == "core"


def test_unavailable_adapter_becomes_skipped_rows_and_a_measured_part_wins():
    skipped_here = {"keras-jax-gather": {"id": "keras-jax-gather", "skip_reason": "needs KERAS_BACKEND=jax"}}
    core = _record([{"adapter": "keras-jax-gather", "status": "skipped", "reason": "needs KERAS_BACKEND=jax"}],
                   adapters=skipped_here, part="core")
    alone = rows_mod.build_rows([core])
    assert alone and all(r["status"] == "skipped" and r["framework"] == "keras-jax" for r in alone)
    assert all(r["skip_reason"] == "needs KERAS_BACKEND=jax" and r["pass"] for r in alone)
    measured = _record([_case("keras-jax-gather", 100)], part="keras-jax", adapters={
        "keras-jax-gather": {"framework_label": "keras-jax", "variant": "gather", "device": "cpu",
                             "gradient": "dense"}})
    merged = rows_mod.build_rows([core, measured])
    assert [(r["adapter"], r["part"], r["status"]) for r in merged] == [("keras-jax-gather", "keras-jax", "ok")]


def test_csv_cells_are_plain():
    assert schema.bench_cell(None) == "" and schema.bench_cell(float("nan")) == ""
    assert schema.bench_cell(0.000123456789) == "0.000123457" and schema.bench_cell(7) == "7"
    with pytest.raises(ValueError, match="columns"):
        read_bench_csv("a,b\n1,2\n")


def _meta(rows):
    return {
        "machine": {"machine_id": "m", "cpu_model": "CPU", "cpu_count": 2, "cpu_affinity": 2,
                    "memory_bytes": 1 << 30, "l2_cache_bytes": 1 << 20, "l3_cache_bytes": 32 << 20,
                    "gpus": [], "git": {"commit": "abc", "dirty": False}},
        "profile": "quick", "run_id": "r1", "finalized": "now", "profile_settings": {},
        "parts": {"core": {"threads": {"requested": 2, "affinity": 2, "env": {"OMP_NUM_THREADS": "2"}},
                           "copy_bandwidth": {"gbps": 20.0}, "timed": True, "self_check": [
                               {"adapter": "numpy-gather", "vocab": 10, "dim": 4, "n_ids": 8,
                                "harness_median_s": 2e-6, "timeit_median_s": 1e-6, "timeit_min_s": 1e-6},
                               {"adapter": "numpy-gather", "vocab": 10, "dim": 4, "n_ids": 8,
                                "harness_median_s": 4e-6}]}},
        "adapters": {}, "onehot_mem_budget": 1 << 31,
    }


def test_bench_md_says_gpu_not_measured_without_gpu_rows():
    rows = rows_mod.build_rows([_record([_case("a-gather", 100), _case("a-onehot", 100, median=2e-3)])])
    meta = _meta(rows)
    meta["self_check"] = self_check_summary(meta)
    text = tables.bench_md(rows, meta, [])
    assert tables.GPU_NOT_MEASURED in text
    assert "N*(2*D*s + i)" in text and "## CPU results" in text and "## Crossover" in text
    check = meta["self_check"][0]
    assert check["ratio"] == pytest.approx(2.0) and check["min_median_s"] == 2e-6 and check["max_median_s"] == 4e-6


def test_a_paired_self_check_is_judged_and_described_by_its_paired_ratio():
    rows = rows_mod.build_rows([_record([_case("a-gather", 100)])])
    meta = _meta(rows)
    assert "pooled (so drift" in tables.bench_md(rows, {**meta, "self_check": self_check_summary(meta)}, [])
    first = meta["parts"]["core"]["self_check"][0]
    first.update(paired=True, ratio=0.9)  # the median of round/block: not the ratio of the medians (2.0)
    meta["self_check"] = self_check_summary(meta)
    assert meta["self_check"][0]["ratio"] == 0.9 and meta["self_check"][0]["paired"] is True
    text = tables.bench_md(rows, meta, [])
    assert "taking turns with the harness's rounds" in text and "pooled (so drift" not in text
    assert "| core | numpy-gather V=10 D=4 N=8 int32 | 2 µs | 1 µs | 0.9 |" in text


def test_bench_md_says_how_the_run_warmed_up_and_older_runs_claim_nothing():
    from dataclasses import asdict

    from harness.bench.sweep import get_profile

    rows = rows_mod.build_rows([_record([_case("a-gather", 100)])])
    meta = _meta(rows)
    meta["self_check"] = self_check_summary(meta)
    meta["profile_settings"] = asdict(get_profile("tiny"))
    assert ("then warm-up calls until they stop getting faster (the median of the last 5 calls within 10 % of "
            "the 5 before; at least 2 ms, at most 25 % of the case's timed budget:") in tables.bench_md(rows, meta, [])
    del meta["profile_settings"]["warmup_share"]  # a run finalized before the settling warm-up
    assert "then warm-up calls, then `benchmark.pedantic`" in tables.bench_md(rows, meta, [])


def test_bench_md_has_a_gpu_table_when_gpu_rows_exist():
    adapters = {"g-gather-cuda": {"framework_label": "g", "variant": "gather", "device": "cuda",
                                  "gradient": "dense"}}
    rows = rows_mod.build_rows([_record([_case("g-gather-cuda", 100)], adapters=adapters)])
    assert rows[0]["device"] == "cuda" and rows[0]["pct_copy_bw"] is None  # host copy bw ≠ device
    meta = _meta(rows)
    meta["self_check"] = []
    text = tables.bench_md(rows, meta, [])
    assert tables.GPU_NOT_MEASURED not in text
    assert "g-gather-cuda" in text.split("## GPU results")[1]


def test_time_formatting():
    assert formats.fmt_time(1.5e-6) == "1.5 µs" and formats.fmt_time(0.25) == "250 ms"
    assert formats.fmt_time(3.0) == "3 s" and formats.fmt_time(None) == ""
    assert formats.fmt_bytes(3 << 20) == "3 MiB"


@pytest.mark.parametrize(("seconds", "text"), [
    (1.0, "1 s"), (0.5, "500 ms"), (1e-3, "1 ms"), (9.99e-4, "999 µs"), (1e-6, "1 µs"), (5e-7, "500 ns")])
def test_time_unit_boundaries(seconds, text):
    assert formats.fmt_time(seconds) == text


@pytest.mark.parametrize(("nbytes", "text"), [
    (1 << 30, "1 GiB"), (999 << 20, "999 MiB"), (1 << 20, "1 MiB"), (999 << 10, "999 KiB"),
    (1024, "1 KiB"), (1023, "1023 B"), (None, "")])
def test_byte_unit_boundaries(nbytes, text):
    assert formats.fmt_bytes(nbytes) == text


@pytest.mark.parametrize(("pct", "text"), [(100.0, "100"), (101.0, "101 †"), (42.0, "42"), (None, "")])
def test_a_share_above_the_copy_bandwidth_is_marked(pct, text):
    assert formats.fmt_share(pct) == text


def test_a_bench_csv_written_before_pct_peak_bw_existed_still_reads():
    rows = rows_mod.build_rows([_record([_case("a-gather", 64)])])
    old_columns = [c for c in rows_mod.COLUMNS if c != "pct_peak_bw"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(old_columns)
    writer.writerow([schema.bench_cell(rows[0].get(c)) for c in old_columns])
    back = read_bench_csv(buffer.getvalue())
    assert back[0]["pct_peak_bw"] is None and back[0]["median_s"] == pytest.approx(rows[0]["median_s"])
    with pytest.raises(ValueError, match="columns"):
        read_bench_csv(buffer.getvalue().replace("median_s", "median"))


def test_one_copy_denominator_per_run_and_parts_that_disagree_are_flagged():
    slow, fast = _record([_case("a-gather", 100)], part="one"), _record([_case("a-gather", 200)], part="two")
    slow["copy_bandwidth"] = {"gbps": 20.0, "single_thread_gbps": 5.0}
    fast["copy_bandwidth"] = {"gbps": 30.0, "single_thread_gbps": 7.0}
    run = rows_mod.run_denominators([slow, fast])
    assert run["copy_gbps"] == 25.0 and run["single_thread_gbps"] == 6.0 and run["device_gbps"] is None
    rows = rows_mod.build_rows([slow, fast])
    for row in (r for r in rows if r["status"] == "ok"):
        # 0.516 GB/s (516000 B in 1e-3 s) of the run's 25: 2.064 % (not 2.58 % of 20 or 1.72 % of 30)
        assert row["pct_copy_bw"] == pytest.approx(2.064, rel=1e-12)
    flagged = rows_mod.copy_disagreements([slow, fast], run)
    assert flagged == {"one": "host copy 20.0 GB/s vs the run's 25.0 GB/s (-20 %)",
                       "two": "host copy 30.0 GB/s vs the run's 25.0 GB/s (+20 %)"}
    third = _record([], part="three")
    third["copy_bandwidth"] = {"gbps": 25.0}
    for record, gbps in ((slow, 24.0), (fast, 26.5), (third, 25.0)):  # all within 10 % of the median 25
        record["copy_bandwidth"]["gbps"] = gbps
    assert rows_mod.copy_disagreements([slow, fast, third], rows_mod.run_denominators([slow, fast, third])) == {}


def test_a_single_threaded_gather_is_compared_with_the_single_thread_copy():
    record = _record([_case("a-gather", 100)])
    record["copy_bandwidth"] = {"gbps": 40.0, "single_thread_gbps": 10.0}
    record["adapters"]["a-gather"]["single_threaded"] = True
    row = next(r for r in rows_mod.build_rows([record]) if r["status"] == "ok")
    assert row["pct_copy_bw"] == pytest.approx(100 * row["gbps"] / 10.0)


def test_parts_that_started_on_busy_cores_are_warned_about():
    from harness.bench.finalize import load_warnings

    quiet, busy = _record([], part="quiet"), _record([], part="busy")
    quiet["busy_share"], busy["busy_share"] = 0.05, 0.6
    assert load_warnings([quiet, busy]) == [
        "part busy: other processes used 60 % of its cores while it sat idle before its first case; "
        "its timings may be slow"]


@pytest.mark.parametrize(("share", "warned"), [
    (None, False),  # not measured
    (0.25, False),  # exactly the threshold: not yet
    (math.nextafter(0.25, 1.0), True),  # a hair beyond it
    (1.0, True),
])
def test_busy_core_warning_threshold(share, warned):
    from harness.bench.finalize import load_warnings

    record = {**_record([], part="p"), "busy_share": share}
    assert len(load_warnings([record])) == int(warned)


# The copy probes of a run's parts may differ by 10 % from the run's median. 10 % is not a double:
# 1.1 / 1 - 1 is 0.1 + 9e-17 (beyond), the double below 1.1 gives 0.1 - 1.3e-16 (inside); below,
# 1 - 0.9 is 0.1 - 2e-17 (inside) and the double below 0.9 gives 0.1 + 9e-17 (beyond).
@pytest.mark.parametrize(("mine", "flagged"), [
    (math.nextafter(1.1, 0.0), False), (1.1, True), (0.9, False), (math.nextafter(0.9, 0.0), True),
    (1.0, False), (None, False), (0.0, False),
])
def test_copy_disagreement_boundary(mine, flagged):
    run = {"copy_gbps": 1.0, "single_thread_gbps": None, "device_gbps": 1.0}
    host = {"part": "host", "copy_bandwidth": {"gbps": mine}}
    gpu = {"part": "gpu", "copy_bandwidth": {"gbps": 1.0}, "device_copy_bandwidth": {"gbps": mine}}
    got = rows_mod.copy_disagreements([host, gpu], run)
    assert sorted(got) == (["gpu", "host"] if flagged else [])
    if flagged:
        assert got["gpu"].startswith("GPU copy") and got["host"].startswith("host copy")


def test_run_denominators_are_medians_of_what_was_measured():
    records = [{"copy_bandwidth": {"gbps": 20.0, "single_thread_gbps": 4.0}},
               {"copy_bandwidth": {"gbps": None}}, {"copy_bandwidth": {"gbps": 0.0}}, {},
               {"copy_bandwidth": {"gbps": 30.0}, "device_copy_bandwidth": {"gbps": 900.0}},
               {"copy_bandwidth": {"gbps": 31.0}, "device_copy_bandwidth": {"error": "not measured"}}]
    assert rows_mod.run_denominators(records) == {"copy_gbps": 30.0, "single_thread_gbps": 4.0,
                                                  "device_gbps": 900.0}
    assert rows_mod.run_denominators([{}]) == {"copy_gbps": None, "single_thread_gbps": None, "device_gbps": None}


def test_run_cost_is_the_parts_wall_time_and_its_timed_share():
    meta = {"run_id": "r1", "parts": {
        "one": {"run_id": "r1", "started": "2026-11-26T00:00:00+00:00", "finished": "2026-11-26T00:01:40+00:00",
                "timed_s": 60.0, "self_check_timeit_s": 9.0},
        "two": {"run_id": "r1", "started": "2026-11-26T00:02:00+00:00", "finished": "2026-11-26T00:02:50+00:00",
                "timed_s": 15.0},
        "old": {"run_id": "r0", "started": "2026-11-25T00:00:00+00:00", "finished": "2026-11-25T01:00:00+00:00",
                "timed_s": 1.0}}}
    assert tables.run_cost(meta) == (150.0, 75.0, 9.0)  # 100 s + 50 s; a part of another run is not this run
    assert tables.run_cost_text((150.0, 75.0, 9.0)) == (
        "150 s of wall time in its parts: 50 % inside the timed rounds and 6 % inside the self-checks' bare "
        "timeit loops")
    assert tables._timed_share(meta["parts"]["one"]) == "100 s / 60 %"
    del meta["parts"]["two"]["timed_s"]  # recorded before the harness counted it
    assert tables.run_cost(meta) is None


def _entry(case: dict, stats: dict, **extra) -> dict:
    """A pytest-benchmark JSON entry as the suite leaves it: its stats, the harness's extra_info."""
    return {"name": f"test_embedding[{case['adapter']}]", "stats": stats, "extra_info": {**case, **extra}}


def test_timed_rows_come_from_pytest_benchmarks_json():
    cpu, gpu, smoke = _case("a-gather", 100, median=1e-3), _case("g-gather-cuda", 100, median=5e-4), \
        _case("a-onehot", 100, median=3e-3)
    adapters = {"a-gather": {"framework": "a", "variant": "gather", "device": "cpu", "gradient": "dense"},
                "a-onehot": {"framework": "a", "variant": "onehot", "device": "cpu", "gradient": "dense"},
                "g-gather-cuda": {"framework": "g", "variant": "gather", "device": "cuda", "gradient": "dense"}}
    record = _record([cpu, gpu, smoke], adapters=adapters)
    doc = {"benchmarks": [
        # what pytest-benchmark timed wins over the copy in the part record
        _entry(cpu, {"median": 2e-3, "iqr": 1e-4, "rounds": 11}, samples=[2e-3] * 11),
        # a GPU entry: device time from the events the harness recorded, wall time from the stats
        _entry(gpu, {"median": 9e-4, "iqr": 5e-5, "rounds": 9}, median_s=4e-4, iqr_s=2e-5,
               timer="device events around K calls; wall = K calls + 1 sync"),
        {"name": "test_self_check[numpy-gather]", "stats": {"median": 1.0}, "extra_info": {"harness_median_s": 1}},
    ]}  # the one-hot has no entry (an untimed smoke run): its record stays
    timings = rows_mod.benchmark_timings(doc)
    assert len(timings) == 2
    rows = {r["adapter"]: r for r in rows_mod.build_rows([record], timings=timings)}
    assert (rows["a-gather"]["median_s"], rows["a-gather"]["iqr_s"], rows["a-gather"]["rounds"]) == (2e-3, 1e-4, 11)
    assert rows["a-gather"]["wall_median_s"] == 2e-3 and rows["a-gather"]["samples"] == [2e-3] * 11
    assert (rows["g-gather-cuda"]["median_s"], rows["g-gather-cuda"]["wall_median_s"]) == (4e-4, 9e-4)
    assert rows["g-gather-cuda"]["iqr_s"] == 2e-5 and rows["g-gather-cuda"]["rounds"] == 9
    assert rows["a-onehot"]["median_s"] == 3e-3 and rows["a-onehot"]["rounds"] == 7
    # GB/s follows the time pytest-benchmark measured
    alone = {r["adapter"]: r for r in rows_mod.build_rows([record])}
    assert rows["a-gather"]["gbps"] == pytest.approx(alone["a-gather"]["gbps"] / 2)
