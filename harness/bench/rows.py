"""Part records -> the rows of bench.csv (one per adapter x case), with derived figures."""

from __future__ import annotations

from harness.bench import datasheets, metrics
from harness.bench.sweep import Case, cases_for, get_profile
from harness.dtypes import np_dtype

COLUMNS = (
    "adapter", "framework", "variant", "device", "dtype", "index_dtype", "pass", "vocab", "dim",
    "n_ids", "distribution", "dup_rate", "median_s", "iqr_s", "rounds", "lookups_per_s", "gbps",
    "pct_copy_bw", "pct_peak_bw", "gflops", "peak_mem_bytes", "table_bytes", "fits_in_cache", "compile_s",
    "wall_median_s", "status", "skip_reason", "part", "run_id",
)
# Columns added after bench.csv files were committed: older files lack them (read as empty).
LATER_COLUMNS = ("run_id", "pct_peak_bw")
MEASURED = ("median_s", "iqr_s", "rounds", "lookups_per_s", "gbps", "pct_copy_bw", "pct_peak_bw", "gflops",
            "peak_mem_bytes", "compile_s", "wall_median_s")


def _row(record: dict, adapter: dict, case: dict) -> dict:
    meta = record.get("machine") or {}
    status = case.get("status", "error")
    on_gpu = adapter.get("device", "cpu") != "cpu"
    # GPU rows relate to the device's own copy bandwidth and L2, CPU rows to the host's.
    gpu = record.get("device_copy_bandwidth") or {}
    copy_gbps = gpu.get("gbps") if on_gpu else (record.get("copy_bandwidth") or {}).get("gbps")
    l2, l3 = (gpu.get("l2_cache_bytes"), None) if on_gpu else (meta.get("l2_cache_bytes"), meta.get("l3_cache_bytes"))
    row = dict.fromkeys(COLUMNS)
    row.update({
        "adapter": case.get("adapter"), "framework": adapter.get("framework_label") or adapter.get("framework"),
        "variant": adapter.get("variant"), "device": adapter.get("device"), "dtype": case.get("dtype"),
        "index_dtype": case.get("index_dtype"), "pass": case.get("pass"), "vocab": case.get("vocab"),
        "dim": case.get("dim"), "n_ids": case.get("n_ids"), "distribution": case.get("distribution"),
        "dup_rate": case.get("dup_rate"), "status": status, "part": record.get("part"),
        "skip_reason": case.get("reason") if status != "ok" else None,
    })
    if row["dtype"] and row["vocab"] and row["dim"]:
        row["table_bytes"] = int(row["vocab"]) * int(row["dim"]) * np_dtype(row["dtype"]).itemsize
        row["fits_in_cache"] = metrics.cache_fit(row["table_bytes"], l2, l3)
    if status != "ok":
        return row
    for key in ("median_s", "iqr_s", "rounds", "peak_mem_bytes", "compile_s", "wall_median_s"):
        row[key] = case.get(key)
    s = np_dtype(row["dtype"]).itemsize
    i = np_dtype(row["index_dtype"]).itemsize if row["index_dtype"] else 0
    row.update(metrics.derived(
        pass_=row["pass"], variant=row["variant"], n=int(row["n_ids"]), vocab=int(row["vocab"]),
        dim=int(row["dim"]), s=s, i=i, unique=int(case.get("unique") or 0),
        gradient=adapter.get("gradient", "dense"), median_s=row["median_s"], copy_gbps=copy_gbps))
    peak = datasheets.peak_bandwidth(gpu.get("name")) if on_gpu else None
    if peak and row["gbps"] is not None:
        row["pct_peak_bw"] = 100.0 * row["gbps"] / peak[0]
    return row


def _unavailable_rows(record: dict, adapter_id: str, adapter: dict) -> list[dict]:
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
        rows.append(_row(record, {**guess, **adapter}, fields))
    return rows


def _framework_of(adapter_id: str) -> str:
    """Best guess for an adapter that never loaded: 'torch-gather' -> torch, keras-jax-* -> keras-jax."""
    tokens = adapter_id.split("-")
    return "-".join(tokens[:2]) if tokens[0] == "keras" and len(tokens) > 2 else tokens[0]


def part_rows(record: dict) -> list[dict]:
    adapters = record.get("adapters") or {}
    rows: list[dict] = []
    for adapter_id, adapter in adapters.items():
        if adapter.get("skip_reason") and "variant" not in adapter:
            rows.extend(_unavailable_rows(record, adapter_id, adapter))
    for case in record.get("cases", []):
        adapter = adapters.get(case.get("adapter"), {})
        if "pass" not in case:  # the placeholder item of an unavailable adapter
            continue
        rows.append(_row(record, adapter, case))
    return rows


def build_rows(records: list[dict]) -> list[dict]:
    """Rows of every part; an adapter measured in one part drops its 'unavailable' rows
    from the others (Keras adapters are skipped outside their own backend's process)."""
    rows = [r for record in records for r in part_rows(record)]
    measured = {r["adapter"] for r in rows if r["variant"] is not None}
    return [r for r in rows if not (r["variant"] is None and r["adapter"] in measured)]


def adapters_meta(records: list[dict]) -> dict[str, dict]:
    """Adapter descriptions from every part; a loaded description beats a skip entry."""
    out: dict[str, dict] = {}
    for record in records:
        for adapter_id, info in (record.get("adapters") or {}).items():
            if adapter_id not in out or ("variant" in info and "variant" not in out[adapter_id]):
                out[adapter_id] = {**info, "part": record.get("part")}
    return out
