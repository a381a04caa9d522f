"""Readable benchmark tables for one machine: small pivots instead of thousands of rows.

Per device and pass, one table per embedding dim: adapters down, vocab sizes across, median
time (and GB/s) in the cells, for the headline slice (float32, uniform ids, the most common
batch size). The full data stays in each machine's bench.csv and BENCH.md.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from harness.bench.sweep import sized_rows
from harness.bench.tables import fmt_time

PASS_ORDER = ("forward", "forward_backward")
DEVICE_ORDER = ("cpu", "cuda")


@dataclass
class PivotCell:
    status: str
    median_s: float | None = None
    gbps: float | None = None
    reason: str = ""


@dataclass
class Pivot:
    device: str
    pass_: str
    dtype: str
    distribution: str
    dim: int | None
    n_ids: int | None
    vocabs: list[int | None] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    cells: dict[tuple[str, int | None], PivotCell] = field(default_factory=dict)

    def best(self, vocab: int | None) -> str | None:
        """The row with the lowest median in a vocab column (None if nothing measured)."""
        timed = [(c.median_s, r) for r in self.rows
                 if (c := self.cells.get((r, vocab))) and c.status == "ok" and c.median_s]
        return min(timed)[1] if timed else None

    @property
    def title(self) -> str:
        batch = f", {self.n_ids} ids" if self.n_ids is not None else ""
        return f"{self.device} · {self.pass_} · dim {self.dim} ({self.dtype}, {self.distribution}{batch})"


def _ordered(values, preferred=()) -> list:
    present = set(values)
    head = [v for v in preferred if v in present]
    # Numbers in numeric order, then strings, then None (a size missing from a skipped row).
    rest = sorted((v for v in present if v not in head),
                  key=lambda v: (v is None, isinstance(v, str), v if isinstance(v, (int, float)) else 0,
                                 str(v)))
    return head + rest


def _prefer(values: list, wanted: str) -> str:
    """``wanted`` when present, else the most common value."""
    return wanted if wanted in values else Counter(values).most_common(1)[0][0]


def _headline_n_ids(rows: list[dict]) -> int | None:
    pool = [r["n_ids"] for r in rows if r["status"] == "ok"] or [r["n_ids"] for r in rows]
    counts = Counter(pool)
    top = max(counts.values())
    return max((n for n, c in counts.items() if c == top), key=lambda n: (n is not None, n or 0))


def pivots(rows: list[dict]) -> list[Pivot]:
    rows = sized_rows(rows)
    tables = []
    for device in _ordered((r["device"] for r in rows), DEVICE_ORDER):
        for pass_ in _ordered((r["pass"] for r in rows if r["device"] == device), PASS_ORDER):
            group = [r for r in rows if r["device"] == device and r["pass"] == pass_]
            dtype = _prefer([r["dtype"] for r in group], "float32")
            distribution = _prefer([r["distribution"] for r in group], "uniform")
            group = [r for r in group if r["dtype"] == dtype and r["distribution"] == distribution]
            for dim in _ordered(r["dim"] for r in group):
                at_dim = [r for r in group if r["dim"] == dim]
                n_ids = _headline_n_ids(at_dim)
                at_dim = [r for r in at_dim if r["n_ids"] == n_ids]
                several_index_dtypes = len({r["index_dtype"] for r in at_dim}) > 1
                pivot = Pivot(device, pass_, dtype, distribution, dim, n_ids,
                              vocabs=_ordered(r["vocab"] for r in at_dim))
                for r in sorted(at_dim, key=lambda r: (r["adapter"], r["index_dtype"] or "")):
                    label = f"{r['adapter']} [{r['index_dtype']}]" if several_index_dtypes else r["adapter"]
                    if label not in pivot.rows:
                        pivot.rows.append(label)
                    pivot.cells[(label, r["vocab"])] = PivotCell(
                        r["status"], r.get("median_s"), r.get("gbps"), str(r.get("skip_reason") or ""))
                # Adapters skipped in every cell (framework missing) only add noise here; the
                # "Skipped" table lists them with the reason.
                pivot.rows = [r for r in pivot.rows if any(
                    (c := pivot.cells.get((r, v))) and c.status != "skipped" for v in pivot.vocabs)]
                tables.append(pivot)
    return tables


def status_counts(rows: list[dict]) -> dict[str, int]:
    counts = Counter(r["status"] for r in rows)
    return {s: counts.get(s, 0) for s in ("ok", "skipped", "error")}


def not_measured(rows: list[dict], status: str) -> list[tuple[str, str, str, int]]:
    """(adapter, device, reason, rows) for skipped or errored rows, grouped by reason."""
    groups = Counter((r["adapter"], r["device"], str(r.get("skip_reason") or "no reason recorded"))
                     for r in rows if r["status"] == status)
    return [(a, d, reason, n) for (a, d, reason), n in sorted(groups.items())]


def format_seconds(seconds: float | None) -> str:
    """The benchmark tables' time format, with a dash for a missing value."""
    return "—" if seconds is None else fmt_time(seconds)


def format_gbps(gbps: float | None) -> str:
    return "—" if gbps is None else f"{gbps:.3g} GB/s"


def failed_parts(machine) -> dict[str, str]:
    """Benchmark parts of the machine's last run that failed: part -> why."""
    parts = (machine.bench_meta or {}).get("failed_parts") or {}
    return {str(k): str(v) for k, v in parts.items()} if isinstance(parts, dict) else {}
