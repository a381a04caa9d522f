"""``harness.bench finalize``: the parts of one run -> bench.csv, bench_meta.json, BENCH.md, plots.

The run's rows are merged into the folder's existing ones under the folder's lock: a row the
run measured (same key: adapter, device, dtype, index dtype, pass, V, D, N, distribution)
replaces the old one, every other row is kept with the run that measured it. So a selective
run never erases the rest, and two runs finishing together never lose each other's rows.
Each profile has a folder of its own (see ``bench_dir``), so rows of different profiles
never mix."""

from __future__ import annotations

import datetime as _dt
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from harness.bench import crossover, parts
from harness.bench.metrics import BYTES_FORMULA_MD
from harness.bench.rows import (
    COLUMNS,
    adapters_meta,
    benchmark_timings,
    build_rows,
    copy_disagreements,
    run_denominators,
)
from harness.bench.selfcheck import self_check_summary
from harness.bench.sweep import get_profile, sized_rows
from harness.errors import CorruptResults, HarnessError
from harness.results import atomic_write_json, atomic_write_text, locked, read_json, set_aside
from harness.schema import as_stored, bench_csv_text, bench_key, read_bench_csv
from harness.views import bench as bench_view
from harness.views import plots

PART_KEYS = ("profile", "timed", "started", "finished", "pytest_exit", "threads", "copy_bandwidth",
             "gemm_flops_per_s", "onehot_mem_budget", "self_check", "load_average", "device_copy_bandwidth",
             "busy_share", "timed_s", "self_check_timeit_s")


def _sort_key(row: dict):
    return (row["device"] or "", row["framework"] or "", row["adapter"] or "", row["dtype"] or "",
            row["pass"] or "", row["dim"] or 0, row["distribution"] or "", row["vocab"] or 0)


def bench_dir(machine_folder: Path, profile: str) -> Path:
    """Where a profile's results live: the full profile in the machine's folder (what the
    README and the report show), every other profile in ``profile-<name>/`` below it."""
    return Path(machine_folder) if profile == "full" else Path(machine_folder) / f"profile-{profile}"


def _previous(out: Path, stream) -> tuple[list[dict], dict]:
    """The folder's rows and metadata before this run; unreadable files are set aside."""
    rows, meta = [], {}
    csv_path, meta_path = out / "bench.csv", out / "bench_meta.json"
    try:
        if meta_path.exists():
            meta = read_json(meta_path)
        if csv_path.exists():
            rows = read_bench_csv(csv_path.read_text(encoding="utf-8"), default_run_id=meta.get("run_id"))
    except (CorruptResults, ValueError) as exc:
        for path in (csv_path, meta_path):
            if path.exists():
                kept = set_aside(path)
                stream.write(f"bench finalize: {path} unreadable ({str(exc).splitlines()[0]}); kept it as "
                             f"{kept.name}, starting a new table\n")
        return [], {}
    return rows, meta


def _merge(new_rows: list[dict], new_parts: dict, old_rows: list[dict], old_meta: dict) -> tuple[list[dict], dict]:
    """New rows plus the old rows they do not replace; old part records that kept rows still
    refer to are carried along (renamed ``part@run`` when this run has a part of that name)."""
    measured = {bench_key(r) for r in new_rows}
    kept = [dict(r) for r in old_rows if bench_key(r) not in measured]
    old_parts = old_meta.get("parts") or {}
    carried: dict[str, dict] = {}
    for row in kept:
        name = row.get("part")
        if name is None or name not in old_parts:
            continue
        if name in new_parts:
            renamed = f"{name}@{row.get('run_id')}"
            carried[renamed] = old_parts[name]
            row["part"] = renamed
        else:
            carried[name] = old_parts[name]
    return new_rows + kept, {**carried, **new_parts}


def finalize(out: Path, run_id: str | None = None, stream=sys.stderr) -> dict:
    out = Path(out)
    parts.check_machine(out)
    if not run_id:
        raise HarnessError("finalize needs --run-id (the id the run's parts were written under)")
    rdir = parts.run_dir(out, run_id)
    manifest, docs, ignored = parts.load_run(rdir, run_id)
    failed = {p: e.get("message", "") for p, e in manifest["parts"].items() if e.get("status") != "ok"}
    records = [doc["embedding_harness"] for doc in docs.values()]
    if not records:
        raise HarnessError(f"run {manifest['run_id']} in {rdir} has no usable part "
                           f"(failed: {', '.join(f'{p}: {m}' for p, m in failed.items()) or 'none recorded'})")
    denominators = run_denominators(records)
    timings = {key: t for doc in docs.values() for key, t in benchmark_timings(doc).items()}
    new_rows = build_rows(records, denominators, timings)
    for row in new_rows:
        row["run_id"] = manifest["run_id"]
    new_rows = as_stored(new_rows)  # the crossover, the plots and BENCH.md read what bench.csv keeps
    new_parts = {r["part"]: {k: r.get(k) for k in PART_KEYS}
                 | {"file": str((rdir / manifest["parts"][r["part"]]["file"]).relative_to(out)),
                    "run_id": manifest["run_id"]} for r in records}
    with locked(out, "bench finalize", stream):
        old_rows, old_meta = _previous(out, stream)
        merged, all_parts = _merge(new_rows, new_parts, old_rows, old_meta)
        rows = sorted(merged, key=_sort_key)
        adapters = {**(old_meta.get("adapters") or {}), **adapters_meta(records)}
        meta = _meta(records, manifest, rows, adapters, all_parts, failed, ignored, old_meta, denominators)
        atomic_write_text(out / "bench.csv", bench_csv_text(rows))
        written_plots = plots.write_all(sized_rows(rows), meta["crossover"], out / "plots")
        meta["plots"] = [str(p.relative_to(out)) for p in written_plots]
        atomic_write_json(out / "bench_meta.json", meta)
        atomic_write_text(out / "BENCH.md", bench_md_of(out))
        _prune_raw(out, {r.get("run_id") for r in rows} | {manifest["run_id"]})
    c = meta["counts"]
    stream.write(f"bench finalize: {len(new_rows)} rows measured by run {manifest['run_id']} "
                 f"({c['ok']} ok, {c['skipped']} skipped, {c['error']} errors in the whole table"
                 + (f"; {meta['kept_rows']} rows kept from earlier runs" if meta["kept_rows"] else "")
                 + f") -> {out}/BENCH.md\n")
    for name in ignored:
        stream.write(f"bench finalize: ignored {rdir / name} (not written by run {manifest['run_id']})\n")
    for part, message in failed.items():
        stream.write(f"bench finalize: part {part} FAILED: {message}\n")
    return meta


def read_finalized(out: Path) -> tuple[list[dict], dict]:
    """A benchmark folder's rows (bench.csv) and metadata (bench_meta.json) as finalize wrote
    them; a missing or damaged file is one line naming it and the fix."""
    out = Path(out)
    csv_path = out / "bench.csv"
    try:
        text = csv_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CorruptResults(f"{csv_path}: missing; run 'python -m harness.bench finalize --out {out}'") from None
    meta = read_json(out / "bench_meta.json")
    try:
        rows = read_bench_csv(text, default_run_id=meta.get("run_id"))
    except ValueError as exc:
        raise CorruptResults(f"{csv_path}: {exc}") from None
    return rows, meta


def bench_md_of(out: Path) -> str:
    """BENCH.md as the folder's bench.csv and bench_meta.json say it, so that the page never shows
    a figure rounded from digits the table does not keep."""
    rows, meta = read_finalized(out)
    return bench_view.bench_md(rows, meta, meta.get("crossover") or [])


def _meta(records, manifest, rows, adapters, all_parts, failed, ignored, old_meta, denominators) -> dict:
    profiles = sorted({r.get("profile") for r in records})
    profile_name = profiles[0] if len(profiles) == 1 else "mixed: " + ", ".join(profiles)
    try:
        profile_settings = asdict(get_profile(profiles[0]))
    except ValueError:
        profile_settings = {}
    kept = [r for r in rows if r.get("run_id") != manifest["run_id"]]
    run_summary = {"run_id": manifest["run_id"], "profile": profile_name, "parts": sorted(manifest["parts"]),
                   "failed_parts": failed, "rows": len(rows) - len(kept),
                   "finalized": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    meta = {
        "machine_id": records[0]["machine"]["machine_id"],
        "machine": records[0]["machine"],
        "run_id": manifest["run_id"],
        "profile": profile_name,
        "profile_settings": profile_settings,
        "finalized": run_summary["finalized"],
        "parts": all_parts,
        "copy_bandwidth_gbps": {k: (p.get("copy_bandwidth") or {}).get("gbps") for k, p in all_parts.items()},
        "device_copy_bandwidth_gbps": {k: (p.get("device_copy_bandwidth") or {}).get("gbps")
                                       for k, p in all_parts.items() if p.get("device_copy_bandwidth")},
        "onehot_mem_budget": records[0].get("onehot_mem_budget"),
        "adapters": adapters,
        "git": records[0]["machine"].get("git"),
        "gpu_measured": any(r["device"] != "cpu" and r["status"] == "ok" for r in rows),
        "columns": list(COLUMNS),
        "bytes_formula": BYTES_FORMULA_MD,
        "failed_parts": failed,
        "ignored_files": ignored,
        "kept_rows": len(kept),
        "kept_from_runs": sorted({str(r.get("run_id")) for r in kept}),
        "runs": [*(old_meta.get("runs") or []), run_summary][-20:],
        "counts": {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "error")},
    }
    meta["copy_denominator"] = denominators
    meta["copy_disagreements"] = copy_disagreements(records, denominators)
    meta["load_warnings"] = load_warnings(records)
    meta["self_check"] = self_check_summary(meta)
    meta["crossover"] = crossover.summarize(sized_rows(rows), adapters)
    return meta


# CPU time other processes used while a part sat idle before its first case: above this share of
# its cores, other work shared them (the 1-minute load average lags, and counts the previous part).
BUSY_SHARE = 0.25


def load_warnings(records: list[dict]) -> list[str]:
    out = []
    for record in records:
        busy = record.get("busy_share")
        if busy is not None and busy > BUSY_SHARE:
            out.append(f"part {record.get('part')}: other processes used {100 * busy:.0f} % of its cores while it "
                       f"sat idle before its first case; its timings may be slow")
    return out


def _prune_raw(out: Path, live: set) -> None:
    """Drop raw run folders no row refers to any more (their rows were all measured again)."""
    raw = out / parts.RAW_DIR
    if not raw.is_dir():
        return
    for folder in raw.iterdir():
        if folder.is_dir() and folder.name not in live:
            shutil.rmtree(folder, ignore_errors=True)
