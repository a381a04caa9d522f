"""COMPARE.md: two runs of one machine side by side (harness/report/compare.py decides each
row's verdict; this view only shows them)."""

from __future__ import annotations

from harness.report.compare import (
    BASIS_BOOTSTRAP,
    BASIS_IQR,
    VERDICT_ORDER,
    BenchDelta,
    Side,
    StatusChange,
)
from harness.schema import BENCH_KEY
from harness.views.formats import format_seconds
from harness.views.report_md import table


def _label(key: tuple) -> list[str]:
    row = dict(zip(BENCH_KEY, key, strict=True))
    return [row["adapter"], row["device"], row["pass"], row["dtype"], row["index_dtype"], row["distribution"],
            row["vocab"], row["dim"], row["n_ids"]]


def _time(row: dict | None) -> str:
    if row is None:
        return "—"
    if row["status"] != "ok":
        return row["status"]
    spread = f" ±{format_seconds(row['iqr_s'] / 2)}" if row.get("iqr_s") else ""
    return format_seconds(row["median_s"]) + spread


def _ratio(delta: BenchDelta) -> str:
    if delta.ratio is None:
        return "—"
    interval = f" [{delta.ci[0]:.3f}, {delta.ci[1]:.3f}]" if delta.ci else ""
    return f"{delta.ratio:.3f}{interval}"


def render(old: Side, new: Side, deltas: list[BenchDelta], changes: list[StatusChange],
           floor: float, problems: list[str]) -> str:
    counts = {v: sum(1 for d in deltas if d.verdict == v) for v in VERDICT_ORDER}
    machines = (f"`{old.machine_id}`" if old.machine_id == new.machine_id
                else f"`{old.machine_id}` → `{new.machine_id}` (**different machines, forced**)")
    out = ["# embedding-harness comparison", "", f"- old: `{old.label}`", f"- new: `{new.label}`",
           f"- machine: {machines}", "",
           f"Verdict per benchmark row: ratio = new / old median. With per-round samples on both sides "
           f"(basis {BASIS_BOOTSTRAP}), the row is indistinguishable when the 95 % bootstrap interval of the "
           f"ratio contains 1; slower or faster when it excludes 1 and the ratio is beyond 1 ± {floor:.0%}; "
           f"else unchanged. Without them ({BASIS_IQR}): unchanged when |new − old| ≤ max(IQR old + IQR new, "
           f"{floor:.0%} of old); else faster or slower.", ""]
    if problems:
        out += ["> [!WARNING]", *(f"> - {p}" for p in problems), ""]
    out += ["## Benchmarks", ""]
    if old.results.bench_rows is None or new.results.bench_rows is None:
        side = "old" if old.results.bench_rows is None else "new"
        out += [f"Not compared: the {side} side has no bench.csv.", ""]
    else:
        out += [", ".join(f"{counts[v]} {v}" for v in VERDICT_ORDER) + ".", ""]
        bases = [d.basis for d in deltas if d.basis]
        if bases:
            out += [f"Basis: {bases.count(BASIS_BOOTSTRAP)} rows by the {BASIS_BOOTSTRAP} interval, "
                    f"{bases.count(BASIS_IQR)} by the {BASIS_IQR} (no usable per-round samples on both sides).", ""]
        ordered = sorted(deltas, key=lambda d: (VERDICT_ORDER.index(d.verdict),
                                                -(d.ratio or 0) if d.verdict == "slower" else (d.ratio or 0)))
        rows = [[*(str(x) for x in _label(d.key)), _time(d.old), _time(d.new), d.basis or "—", _ratio(d), d.verdict]
                for d in ordered]
        out.append(table(["adapter", "device", "pass", "dtype", "index", "distribution", "vocab", "dim", "n_ids",
                          "old", "new", "basis", "ratio [95 % interval]", "verdict"], rows)
                   if rows else "No benchmark rows.")
        out.append("")
    out += ["## Conformance", ""]
    if old.results.conformance is None or new.results.conformance is None:
        side = "old" if old.results.conformance is None else "new"
        out += [f"Not compared: the {side} side has no conformance.json.", ""]
    elif changes:
        out.append(table(["adapter", "check", "old", "new"], [[c.adapter, c.check, c.old, c.new] for c in changes]))
        out.append("")
    else:
        out += ["No check changed status.", ""]
    return "\n".join(out).rstrip() + "\n"
