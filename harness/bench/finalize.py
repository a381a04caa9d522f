"""``harness.bench finalize``: the parts of one run -> bench.csv, bench_meta.json, BENCH.md, plots."""

from __future__ import annotations

import datetime as _dt
import sys
from dataclasses import asdict
from pathlib import Path

from harness.bench import crossover, parts, plots, tables
from harness.bench.metrics import BYTES_FORMULA_MD
from harness.bench.rows import COLUMNS, adapters_meta, build_rows
from harness.bench.sweep import get_profile
from harness.errors import HarnessError
from harness.results import atomic_write_json, atomic_write_text

PART_KEYS = ("profile", "timed", "started", "finished", "pytest_exit", "threads", "copy_bandwidth",
             "gemm_flops_per_s", "onehot_mem_budget", "self_check", "load_average", "device_copy_bandwidth")


def _sort_key(row: dict):
    return (row["device"] or "", row["framework"] or "", row["adapter"] or "", row["dtype"] or "",
            row["pass"] or "", row["dim"] or 0, row["distribution"] or "", row["vocab"] or 0)


def finalize(out: Path, run_id: str | None = None, stream=sys.stderr) -> dict:
    out = Path(out)
    parts.check_machine(out)
    manifest, docs, ignored = parts.load_run(out, run_id)
    failed = {p: e.get("message", "") for p, e in manifest["parts"].items() if e.get("status") == "failed"}
    records = [doc["embedding_harness"] for doc in docs.values()]
    if not records:
        raise HarnessError(f"run {manifest['run_id']} in {out} has no usable part "
                           f"(failed: {', '.join(failed) or 'none recorded'})")
    rows = sorted(build_rows(records), key=_sort_key)
    adapters = adapters_meta(records)
    entries = crossover.summarize(rows, adapters)
    profiles = sorted({r.get("profile") for r in records})
    profile_name = profiles[0] if len(profiles) == 1 else "mixed: " + ", ".join(profiles)
    try:
        profile_settings = asdict(get_profile(profiles[0]))
    except ValueError:
        profile_settings = {}
    meta = {
        "machine_id": records[0]["machine"]["machine_id"],
        "machine": records[0]["machine"],
        "run_id": manifest["run_id"],
        "profile": profile_name,
        "profile_settings": profile_settings,
        "finalized": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parts": {r["part"]: {k: r.get(k) for k in PART_KEYS} | {"file": manifest["parts"][r["part"]]["file"]}
                  for r in records},
        "copy_bandwidth_gbps": {r["part"]: (r.get("copy_bandwidth") or {}).get("gbps") for r in records},
        "device_copy_bandwidth_gbps": {r["part"]: (r.get("device_copy_bandwidth") or {}).get("gbps")
                                       for r in records if r.get("device_copy_bandwidth")},
        "onehot_mem_budget": records[0].get("onehot_mem_budget"),
        "adapters": adapters,
        "git": records[0]["machine"].get("git"),
        "gpu_measured": any(r["device"] != "cpu" and r["status"] == "ok" for r in rows),
        "columns": list(COLUMNS),
        "bytes_formula": BYTES_FORMULA_MD,
        "failed_parts": failed,
        "ignored_files": ignored,
        "counts": {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "error")},
    }
    meta["self_check"] = tables.self_check_summary(meta)
    meta["crossover"] = entries
    atomic_write_text(out / "bench.csv", tables.to_csv(rows))
    written_plots = plots.write_all(rows, entries, out / "plots")
    meta["plots"] = [str(p.relative_to(out)) for p in written_plots]
    atomic_write_json(out / "bench_meta.json", meta)
    atomic_write_text(out / "BENCH.md", tables.bench_md(rows, meta, entries))
    c = meta["counts"]
    stream.write(f"bench finalize: {len(rows)} rows ({c['ok']} ok, {c['skipped']} skipped, "
                 f"{c['error']} errors) from parts {', '.join(meta['parts'])} -> {out}/BENCH.md\n")
    for name in ignored:
        stream.write(f"bench finalize: ignored {out / name} (not written by run {manifest['run_id']})\n")
    for part, message in failed.items():
        stream.write(f"bench finalize: part {part} failed: {message}\n")
    return meta
