"""Readable benchmark tables for one machine: small pivots instead of thousands of rows.

Per device and pass, one table per embedding dim: adapters down, vocab sizes across, median
time (and GB/s) in the cells, for the headline slice (float32, uniform ids, the most common
batch size). The full data stays in each machine's bench.csv and BENCH.md.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from harness.bench.slices import headline, slices


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
    extra: str = ""  # the slice's values in dimensions the title does not name

    def best(self, vocab: int | None) -> str | None:
        """The row with the lowest median in a vocab column (None if nothing measured)."""
        timed = [(c.median_s, r) for r in self.rows
                 if (c := self.cells.get((r, vocab))) and c.status == "ok" and c.median_s]
        return min(timed)[1] if timed else None

    @property
    def title(self) -> str:
        batch = f", {self.n_ids} ids" if self.n_ids is not None else ""
        extra = f", {self.extra}" if self.extra else ""
        return f"{self.device} · {self.pass_} · dim {self.dim} ({self.dtype}, {self.distribution}{batch}{extra})"


def pivots(rows: list[dict]) -> list[Pivot]:
    """The headline slices (harness/bench/slices.py) as adapters x vocabulary tables."""
    tables = []
    for piece in headline(slices(rows)):
        key = piece.key
        pivot = Pivot(key.get("device"), key.get("pass"), key.get("dtype"), key.get("distribution"), key.get("dim"),
                      key.get("n_ids"), vocabs=piece.vocabs, extra=piece.extra_dimensions())
        for row_label in piece.labels:
            for vocab in piece.vocabs:
                r = piece.cell(row_label, vocab)
                if r is not None:
                    pivot.cells[(row_label, vocab)] = PivotCell(
                        r["status"], r.get("median_s"), r.get("gbps"), str(r.get("skip_reason") or ""))
        # Adapters skipped in every cell (framework missing) only add noise here; the
        # "Skipped" table lists them with the reason.
        pivot.rows = [r for r in piece.labels if any(
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


def failed_parts(machine) -> dict[str, str]:
    """Benchmark parts of the machine's last run that failed: part -> why."""
    parts = (machine.bench_meta or {}).get("failed_parts") or {}
    return {str(k): str(v) for k, v in parts.items()} if isinstance(parts, dict) else {}
