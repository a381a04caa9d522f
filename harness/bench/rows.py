"""Part records -> the rows of bench.csv (one per adapter x case), with derived figures."""

from __future__ import annotations

import statistics

from harness.bench import datasheets, metrics
from harness.bench.sweep import Case, cases_for, get_profile
from harness.dtypes import np_dtype
from harness.schema import BENCH_COLUMNS, BENCH_KEY, measured_wins

# bench.csv's columns, in order (their types and the row key: harness/schema.py).
COLUMNS = BENCH_COLUMNS

# The timing fields pytest-benchmark's entries give a bench.csv row (the rest of the row is the case).
TIMING_FIELDS = ("median_s", "iqr_s", "rounds", "wall_median_s", "samples", "peak_mem_bytes", "compile_s")
MEASURED = ("median_s", "iqr_s", "rounds", "lookups_per_s", "gbps", "pct_copy_bw", "pct_peak_bw", "gflops",
            "peak_mem_bytes", "compile_s", "wall_median_s")


# Parts of one run whose copy bandwidth differs from the run's by more than this are flagged:
# their host was not the same machine at that moment (load, frequency), so their rows are suspect.
COPY_AGREEMENT = 0.10


def _median(values: list[float | None]) -> float | None:
    measured = [v for v in values if v]
    return statistics.median(measured) if measured else None


def run_denominators(records: list[dict]) -> dict:
    """One copy bandwidth per run (the median over its parts' probes), so percentages compare
    across frameworks: the host's with all threads and with one thread, and the GPU's."""
    return {"copy_gbps": _median([(r.get("copy_bandwidth") or {}).get("gbps") for r in records]),
            "single_thread_gbps": _median([(r.get("copy_bandwidth") or {}).get("single_thread_gbps")
                                           for r in records]),
            "device_gbps": _median([(r.get("device_copy_bandwidth") or {}).get("gbps") for r in records])}


def copy_disagreements(records: list[dict], denominators: dict) -> dict[str, str]:
    """Part -> why its own copy probe disagrees with the run's denominator by more than 10 %."""
    out = {}
    for record in records:
        for key, mine, run in (("host", (record.get("copy_bandwidth") or {}).get("gbps"), denominators["copy_gbps"]),
                               ("GPU", (record.get("device_copy_bandwidth") or {}).get("gbps"),
                                denominators["device_gbps"])):
            if mine and run and abs(mine / run - 1) > COPY_AGREEMENT:
                out[record.get("part", "?")] = (f"{key} copy {mine:.1f} GB/s vs the run's {run:.1f} GB/s "
                                                f"({100 * (mine / run - 1):+.0f} %)")
    return out


def _row(record: dict, adapter: dict, case: dict, denominators: dict | None = None,
         timed: dict | None = None) -> dict:
    meta = record.get("machine") or {}
    status = case.get("status", "error")
    on_gpu = adapter.get("device", "cpu") != "cpu"
    # GPU rows relate to the device's copy bandwidth and L2, CPU rows to the host's; a gather
    # that runs on one thread (NumPy) to the host's single-thread copy.
    gpu = record.get("device_copy_bandwidth") or {}
    run = denominators or run_denominators([record])
    copy_gbps = run["device_gbps"] if on_gpu else (
        run["single_thread_gbps"] if adapter.get("single_threaded") else run["copy_gbps"])
    l2, l3 = (gpu.get("l2_cache_bytes"), None) if on_gpu else (meta.get("l2_cache_bytes"), meta.get("l3_cache_bytes"))
    row = dict.fromkeys(COLUMNS)
    row.update({c: case.get(c) for c in BENCH_KEY})  # every dimension of the case, as its column
    row.update({
        "framework": adapter.get("framework_label") or adapter.get("framework"),
        "variant": adapter.get("variant"), "device": adapter.get("device"), "pooling": case.get("pooling") or None,
        "dup_rate": case.get("dup_rate"), "output": case.get("output"), "status": status, "part": record.get("part"),
        "skip_reason": case.get("reason") if status != "ok" else None,
    })
    if row["dtype"] and row["vocab"] and row["dim"]:
        s = np_dtype(row["dtype"]).itemsize
        row["table_bytes"] = int(row["vocab"]) * int(row["dim"]) * s
        # Hot or cold: what the timing loop touches (rows of every batch, output, ids), not the table.
        i = np_dtype(row["index_dtype"]).itemsize if row["index_dtype"] else 0
        unique = int(case.get("unique") or row["n_ids"] or 0)
        touched = metrics.touched_bytes(int(row["n_ids"] or 0), int(row["vocab"]), int(row["dim"]), s, i, unique,
                                        int(case.get("id_batches") or 1))
        row["fits_in_cache"] = metrics.cache_fit(touched, l2, l3)
    if status != "ok":
        return row
    for key in TIMING_FIELDS:
        row[key] = (timed or case).get(key)
    if not row["samples"]:
        del row["samples"]  # per-round times, for the intervals (not a bench.csv column)
    s = np_dtype(row["dtype"]).itemsize
    i = np_dtype(row["index_dtype"]).itemsize if row["index_dtype"] else 0
    row.update(metrics.derived(
        pass_=row["pass"], variant=row["variant"], n=int(row["n_ids"]), vocab=int(row["vocab"]),
        dim=int(row["dim"]), s=s, i=i, unique=int(case.get("unique") or 0),
        gradient=adapter.get("gradient", "dense"), median_s=row["median_s"], copy_gbps=copy_gbps,
        rows=Case.from_dict(case).output_rows))
    peak = datasheets.peak_bandwidth(gpu.get("name")) if on_gpu else None
    if peak and row["gbps"] is not None:
        row["pct_peak_bw"] = 100.0 * row["gbps"] / peak[0]
    return row


def _unavailable_rows(record: dict, adapter_id: str, adapter: dict, denominators: dict | None = None) -> list[dict]:
    """An adapter that could not load: one skipped row per float32 case of the profile."""
    try:
        cases = cases_for(get_profile(record.get("profile", "full")))
    except ValueError:
        cases = []
    rows = []
    for case in cases or [None]:
        fields = {"adapter": adapter_id, "status": "skipped",
                  "reason": adapter.get("skip_reason") or "adapter unavailable"}
        if isinstance(case, Case):
            fields.update(case.as_dict())
        guess = {"device": "cuda" if adapter_id.endswith("-cuda") else "cpu",
                 "framework": _framework_of(adapter_id)}
        rows.append(_row(record, {**guess, **adapter}, fields, denominators))
    return rows


def _framework_of(adapter_id: str) -> str:
    """Best guess for an adapter that never loaded: the framework that registered it, else the
    id's first word."""
    from harness.registry import framework_of

    framework = framework_of(adapter_id)
    return framework.name if framework else adapter_id.split("-")[0]


def benchmark_timings(doc: dict) -> dict[tuple[str, str], dict]:
    """(adapter, case key) -> the timings of a part's pytest-benchmark JSON, the source of truth for
    every timed row: its own statistics of what it timed (a CPU call; on a GPU, K calls and one
    sync, the wall time), and what the harness recorded in the entry's ``extra_info`` beside them
    (the device time from events, the first call, memory). Untimed runs (smoke) have no entries."""
    out = {}
    for entry in doc.get("benchmarks") or []:
        info, stats = entry.get("extra_info") or {}, entry.get("stats") or {}
        if "median_s" not in info or "pass" not in info or "median" not in stats:
            continue  # a self-check entry, or one the harness did not finish
        device_timed = str(info.get("timer", "")).startswith("device events")
        timing = {"median_s": info["median_s"] if device_timed else stats["median"],
                  "iqr_s": info.get("iqr_s") if device_timed else stats.get("iqr"),
                  "rounds": stats.get("rounds"), "wall_median_s": stats["median"],
                  "samples": info.get("samples") or stats.get("data"),
                  "peak_mem_bytes": info.get("peak_mem_bytes"), "compile_s": info.get("compile_s")}
        out[(info.get("adapter"), Case.from_dict(info).key)] = timing
    return out


def part_rows(record: dict, denominators: dict | None = None,
              timings: dict[tuple[str, str], dict] | None = None) -> list[dict]:
    adapters = record.get("adapters") or {}
    rows: list[dict] = []
    for adapter_id, adapter in adapters.items():
        if adapter.get("skip_reason") and "variant" not in adapter:
            rows.extend(_unavailable_rows(record, adapter_id, adapter, denominators))
    for case in record.get("cases", []):
        adapter = adapters.get(case.get("adapter"), {})
        if "pass" not in case:  # the placeholder item of an unavailable adapter
            continue
        timed = (timings or {}).get((case.get("adapter"), Case.from_dict(case).key))
        rows.append(_row(record, adapter, case, denominators, timed))
    return rows


def build_rows(records: list[dict], denominators: dict | None = None,
               timings: dict[tuple[str, str], dict] | None = None) -> list[dict]:
    """Rows of every part, against the run's one copy bandwidth, timed rows from ``timings``
    (``benchmark_timings`` of the parts' pytest-benchmark JSON) where they have an entry, else from
    the part record; the part that measured an adapter wins over those that list it as unavailable
    (Keras adapters are skipped outside their own backend's process)."""
    denominators = denominators or run_denominators(records)
    rows = [r for record in records for r in part_rows(record, denominators, timings)]
    return measured_wins(rows, lambda r: r["adapter"], lambda r: r["variant"] is not None)


def adapters_meta(records: list[dict]) -> dict[str, dict]:
    """Adapter descriptions from every part; the part that loaded it wins over a skip entry (the
    later part among equals)."""
    described = [(adapter_id, {**info, "part": record.get("part")})
                 for record in records for adapter_id, info in (record.get("adapters") or {}).items()]
    return dict(measured_wins(described, lambda d: d[0], lambda d: "variant" in d[1]))
