"""The result files' schema, stated once: bench.csv (columns, their types, a row's identity) and
the conformance document (statuses, the keys readers rely on). Writers and readers import it.

Standard library only: the results must be readable where nothing but the harness is installed.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable

# --- bench.csv ----------------------------------------------------------------------------
# Column -> type, in the file's column order. Sizes are integers, measurements floats, the rest
# text (``fits_in_cache``: yes/no; ``output``: how the output buffer was handled).
BENCH_COLUMN_TYPES: dict[str, type] = {
    "adapter": str, "framework": str, "variant": str, "device": str, "dtype": str, "index_dtype": str,
    "pass": str, "vocab": int, "dim": int, "n_ids": int, "pooling": int, "distribution": str,
    "dup_rate": float, "median_s": float, "iqr_s": float, "rounds": int, "lookups_per_s": float,
    "gbps": float, "pct_copy_bw": float, "pct_peak_bw": float, "gflops": float, "peak_mem_bytes": int,
    "table_bytes": int, "fits_in_cache": str, "compile_s": float, "wall_median_s": float, "output": str,
    "status": str, "skip_reason": str, "part": str, "run_id": str,
}
BENCH_COLUMNS = tuple(BENCH_COLUMN_TYPES)
# Columns added after bench.csv files were committed: older files lack them (read as empty).
BENCH_LATER_COLUMNS = ("run_id", "pct_peak_bw", "output", "pooling")
BENCH_STATUSES = ("ok", "skipped", "error")
# A row's identity: two rows with the same key measure the same thing.
BENCH_KEY = ("adapter", "device", "dtype", "index_dtype", "pass", "vocab", "dim", "n_ids", "pooling", "distribution")
# The columns a reader needs: a table without one is refused, so that a renamed column never
# becomes data a report silently leaves out.
BENCH_REQUIRED = (*(c for c in BENCH_KEY if c not in BENCH_LATER_COLUMNS), "framework", "variant", "median_s",
                  "iqr_s", "gbps", "status", "skip_reason")


# How much a row (or an adapter's description) says: a measurement beats an error, which
# beats a skip. Parts repeat adapters they cannot run as skips (a Keras adapter outside its
# backend's process), so wherever rows of several parts meet, the part that measured wins.
BENCH_STATUS_RANK = {"ok": 2, "error": 1, "skipped": 0}


def measured_wins(items, group, rank) -> list:
    """The items that say the most in their group: those of the group's highest ``rank``,
    in their order. ``group`` and ``rank`` map an item to its group and to a comparable."""
    items = list(items)
    best: dict = {}
    for item in items:
        key = group(item)
        best[key] = max(best.get(key, rank(item)), rank(item))
    return [item for item in items if rank(item) == best[group(item)]]


def bench_cell(value) -> str:
    """One value as bench.csv writes it: empty for None/NaN, 6 significant digits for floats."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else format(value, ".6g")
    return str(value)


def bench_csv_text(rows: Iterable[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(BENCH_COLUMNS)
    for row in rows:
        writer.writerow([bench_cell(row.get(c)) for c in BENCH_COLUMNS])
    return buf.getvalue()


def _parsed(column: str, text: str):
    kind = BENCH_COLUMN_TYPES.get(column, str)
    if text == "" or kind is str:
        return None if text == "" else text
    value = float(text)
    if kind is int:
        if not value.is_integer():
            raise ValueError(f"{column} {text!r} is not an integer")
        return int(value)
    return value


def bench_csv_header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text, newline="")), [])


def parse_bench_csv(text: str) -> tuple[list[str], list[dict]]:
    """(header, rows) of a bench.csv: typed values, None for empty cells, unknown columns kept as
    text. Raises ``ValueError('line N: ...')`` for a row whose cells do not match the header (a
    truncated write), a bad number, an unknown status or an ``ok`` row without a positive median:
    half a table is not trustworthy."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = list(reader.fieldnames or [])
    rows = []
    try:
        for raw in reader:
            line = reader.line_num
            if None in raw or any(v is None for v in raw.values()):
                cells = sum(v is not None for k, v in raw.items() if k is not None) + len(raw.get(None) or [])
                raise ValueError(f"line {line} has {cells} cells but the header has {len(header)} (truncated file?)")
            if raw.get("status") not in BENCH_STATUSES:
                raise ValueError(f"line {line}: status {raw.get('status')!r} is not one of "
                                 f"{', '.join(BENCH_STATUSES)} (truncated file?)")
            try:
                row = {column: _parsed(column, value.strip() if column in BENCH_COLUMN_TYPES else value)
                       for column, value in raw.items()}
            except ValueError as exc:
                raise ValueError(f"line {line}: bad number ({exc})") from None
            median = row.get("median_s")
            if row["status"] == "ok" and (median is None or not math.isfinite(median) or median <= 0):
                raise ValueError(f"line {line}: status ok but median_s is {raw.get('median_s')!r}")
            rows.append(row)
    except csv.Error as exc:
        raise ValueError(f"line {reader.line_num}: {exc}") from None
    return header, rows


def read_bench_csv(text: str, default_run_id: str | None = None) -> list[dict]:
    """bench.csv back into rows (typed; empty cells as None), refusing a table whose columns are
    not bench.csv's. A table written before rows carried their run id gets ``default_run_id``
    (its bench_meta.json's run)."""
    header = bench_csv_header(text)
    missing = [c for c in BENCH_COLUMNS if c not in header and c not in BENCH_LATER_COLUMNS]
    unknown = [c for c in header if c not in BENCH_COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        raise ValueError(f"bench.csv columns are {header}, expected {list(BENCH_COLUMNS)}")
    _, rows = parse_bench_csv(text)
    for row in rows:
        row.setdefault("run_id", default_run_id)
        for column in BENCH_LATER_COLUMNS:
            row.setdefault(column, None)
    return rows


def as_stored(rows: Iterable[dict]) -> list[dict]:
    """``rows`` as bench.csv gives them back (its precision, its types), keeping what the file
    does not hold (per-round samples): every view of a run, rendered at finalize or again later
    from the file, reads the same numbers."""
    rows = list(rows)
    stored = read_bench_csv(bench_csv_text(rows))
    for back, row in zip(stored, rows, strict=True):
        back.update({k: v for k, v in row.items() if k not in BENCH_COLUMN_TYPES})
    return stored


def bench_key(row: dict) -> tuple:
    return tuple("" if row.get(c) is None else str(row[c]) for c in BENCH_KEY)


# --- machine metadata (harness.machine.metadata), recorded in conformance.json and bench_meta.json ----
MACHINE_FIELDS = ("machine_id", "cpu_model", "cpu_count", "cpu_affinity", "memory_bytes", "l2_cache_bytes",
                  "l3_cache_bytes", "gpus", "os", "python", "git", "thread_env")


# --- conformance.json -----------------------------------------------------------------------
CONFORMANCE_SCHEMA = "embedding-harness/conformance/1"
# A cell's verdict. not_applicable: the check does not apply to this adapter (declared so, or a
# dtype or variant it does not have); skipped: the adapter could not run on this machine.
CHECK_STATUSES = ("passed", "failed", "xfailed", "not_applicable", "skipped")


def check_seconds(adapter: dict) -> float:
    """The seconds an adapter's recorded checks took, together (0 for cells without a duration)."""
    return sum(c.get("duration_s") or 0 for c in adapter.get("checks", []))
# The keys readers rely on, by level, with their types (None allowed where the writer records
# "none"); other keys are carried along untouched.
_NUMBER = (int, float)
CONFORMANCE_REQUIRED = {"machine": dict, "created": str, "hypothesis_profile": str}
ADAPTER_REQUIRED = {"versions": dict, "declared": dict, "observed": dict, "skip_reason": (str, type(None)),
                    "checks": list}
CHECK_REQUIRED = {"detail": str, "examples": (int, type(None)), "duration_s": (*_NUMBER, type(None))}
