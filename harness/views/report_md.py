"""REPORT.md: the same content as report.html, as GitHub-flavoured Markdown.

It is also pasted into ``$GITHUB_STEP_SUMMARY``, so it stays compact: summaries and the
checks that did not pass rather than every cell, and no embedded images."""

from __future__ import annotations

import functools
import html

from harness.platform import STALE_INTRO
from harness.report.load import BENCH_FILE, BENCH_MD_FILE, PLOTS_DIR, MachineResults
from harness.report.merge import (
    AdapterKey,
    ConformanceMatrix,
    ReportData,
    adapter_label,
    crossover,
    crossover_table,
    machine_metadata,
)
from harness.views import mdtext, tables
from harness.views.bench_pivots import (
    Pivot,
    failed_parts,
    not_measured,
    pivots,
    status_counts,
)
from harness.views.formats import format_gbps, format_seconds

STATUS_MARK = {"passed": "✅ passed", "failed": "❌ failed", "xfailed": "⚠️ xfail", "not_applicable": "➖ n/a",
               "skipped": "⏭️ skip"}
DETAIL_LIMIT = 4000  # characters of one failure's detail; the full text is in conformance.json


def esc(text: object) -> str:
    """One table cell: no pipes or newlines breaking the row, no HTML from result files."""
    return mdtext.cell(text)


# The report's tables line their columns up: REPORT.md also reads as plain text.
table = functools.partial(tables.markdown_rows, padded=True)


def summary_cell(matrix: ConformanceMatrix, key: AdapterKey, machine: str) -> str:
    run = matrix.runs.get((key, machine))
    if run is None:
        return "—"
    if run.skip_reason:
        return f"⏭️ skipped: {run.skip_reason[:80]}"
    c = run.counts
    mark = "❌" if c["failed"] else "✅"
    parts = [f"{c['passed']} passed"]
    parts += [f"{c[s]} {s.replace('_', ' ')}" for s in ("failed", "xfailed", "not_applicable", "skipped") if c[s]]
    return f"{mark} " + ", ".join(parts)


def note(matrix: ConformanceMatrix, key: AdapterKey, check: str, limit: int = 120) -> str:
    """The first line of the first recorded reason a check did not pass (a declared deviation,
    a skip reason, an assertion)."""
    for machine in matrix.machines:
        cell = matrix.cell(key, check, machine)
        if cell and cell.status != "passed" and cell.detail.strip():
            line = cell.detail.strip().splitlines()[0]
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def conformance_section(matrix: ConformanceMatrix) -> list[str]:
    out = ["## Conformance", ""]
    if not matrix.machines:
        return out + ["No machine has a conformance.json.", ""]
    out += [f"{len(matrix.adapters)} adapters on {len(matrix.machines)} machine(s): "
            f"{matrix.total('passed')} passed, {matrix.total('failed')} failed, "
            f"{matrix.total('xfailed')} xfailed (declared deviations), {matrix.total('not_applicable')} not "
            f"applicable, {matrix.total('skipped')} skipped. "
            "— means not run there.", "", "### Adapters × machines", ""]
    out.append(table(["adapter", *matrix.machines],
                     [[adapter_label(k), *(summary_cell(matrix, k, m) for m in matrix.machines)]
                      for k in matrix.adapters]))
    out += ["", "### Checks not passing on every machine", ""]
    rows = [[adapter_label(k), check,
             *(STATUS_MARK.get(s, "—") if s else "—" for s in matrix.row_statuses(k, check)),
             note(matrix, k, check)]
            for k in matrix.adapters for check in matrix.checks[k] if not matrix.all_passed(k, check)]
    out.append(table(["adapter", "check", *matrix.machines, "why (first machine that did not pass)"], rows)
               if rows else "Every check passed on every machine that ran it.")
    failures = matrix.failures()
    if failures:
        out += ["", "### Failures", ""]
        for machine, key, check, cell in sorted(failures, key=lambda f: (f[1], f[2], f[0])):
            detail = cell.detail if len(cell.detail) <= DETAIL_LIMIT else (
                cell.detail[:DETAIL_LIMIT] + "\n… (truncated; full text in conformance.json)")
            out += [f"<details><summary>❌ <code>{html.escape(adapter_label(key))}</code> · "
                    f"<code>{html.escape(check)}</code> on <code>{html.escape(machine)}</code></summary>", "",
                    mdtext.code_block(detail or "(no detail recorded)"), "", "</details>"]
    mismatches = [[m, adapter_label(k), cap, str(declared), str(observed)]
                  for (k, m), run in matrix.runs.items() for cap, declared, observed in run.mismatches]
    if mismatches:
        out += ["", "### Declared behaviour that differs from what was observed", "",
                table(["machine", "adapter", "capability", "declared", "observed"], mismatches)]
    stale = matrix.stale_rule_rows()
    if stale:
        out += ["", "### Stale platform declarations", "", STALE_INTRO, "",
                table(["adapter", "checks", "declared to hold where", "ran on"], stale)]
    return out + [""]


def pivot_table(pivot: Pivot) -> str:
    best = {v: pivot.best(v) for v in pivot.vocabs}
    rows = []
    for label in pivot.rows:
        row = [label]
        for vocab in pivot.vocabs:
            cell = pivot.cells.get((label, vocab))
            if cell is None:
                row.append("—")
            elif cell.status != "ok":
                row.append(cell.status)
            else:
                text = f"{format_seconds(cell.median_s)} ({format_gbps(cell.gbps)})"
                row.append(f"**{text}**" if best[vocab] == label else text)
        rows.append(row)
    return table(["adapter", *(f"vocab {v:,}" if isinstance(v, int) else "vocab ?" for v in pivot.vocabs)],
                 rows)


def bench_section(machine: MachineResults) -> list[str]:
    rows = machine.bench_rows or []
    mid = machine.machine_id
    counts = status_counts(rows)
    where = f"{mid}/{machine.bench_subdir}"
    links = [f"[{where}{BENCH_FILE}]({where}{BENCH_FILE})"]
    if machine.has_bench_md:
        links.insert(0, f"[{where}{BENCH_MD_FILE}]({where}{BENCH_MD_FILE})")
    out = [f"### `{mid}`", "",
           f"{len(rows)} rows: {counts['ok']} measured, {counts['skipped']} skipped, {counts['error']} errors. "
           f"Median time per call (GB/s); **bold** = fastest in its column. All rows: {' · '.join(links)}.", ""]
    profile = (machine.bench_meta or {}).get("profile")
    if profile and profile != "full":
        out += [f"Benchmark profile **{esc(profile)}** (no full-profile run on this machine): "
                f"fewer, shorter rounds than a full run.", ""]
    for part, message in failed_parts(machine).items():
        out += [f"> [!WARNING]\n> Benchmark part **{esc(part)}** FAILED: {esc(message)}", ""]
    summary = crossover(machine)
    if summary is not None:
        shaped = crossover_table(summary)
        if shaped:
            caption, headers, cells = shaped
            out += [f"**Crossover: where one-hot stops being competitive**{' (' + caption + ')' if caption else ''}",
                    "", table(headers, cells), ""]
        else:
            out += [f"**Crossover:** {esc(summary)}", ""]
    for pivot in pivots(rows):
        out += [f"#### {pivot.title}", "", pivot_table(pivot), ""]
    for status, title in (("error", "Errors"), ("skipped", "Skipped")):
        groups = not_measured(rows, status)
        if groups:
            out += [f"**{title}**", "", table(["adapter", "device", "reason", "rows"],
                                              [[a, d, r[:200], str(n)] for a, d, r, n in groups]), ""]
    if machine.plots:
        names = ", ".join(f"[{p.name}]({where}{PLOTS_DIR}/{p.name})" for p in machine.plots)
        out += [f"Plots (embedded in report.html): {names}", ""]
    return out


def families_section(machines: list[MachineResults]) -> list[str]:
    """Per machine: what compiling changed, the layer options and the bags (conformance), and the
    bags by pooling factor (benchmarks), beside the plain lookups above."""
    from harness.views.bench import bag_table
    from harness.views.conformance import FAMILIES_INTRO, FAMILIES_TITLE, families_sections

    out = []
    for machine in machines:
        parts = families_sections(machine.conformance["adapters"], "####") if machine.conformance else []
        bags = bag_table(machine.bench_rows or [])
        if bags:
            parts += ["", "#### Bags by pooling factor", "", bags]
        if parts:
            out += [f"### `{machine.machine_id}`", *parts, ""]
    if not out:
        return []
    return [f"## {FAMILIES_TITLE}", "", FAMILIES_INTRO, "", *out]


def machines_section(machines: list[MachineResults]) -> list[str]:
    out = ["## Machines", ""]
    for machine in machines:
        out += [f"### `{machine.machine_id}`", "",
                table(["", "value"], [[k, v] for k, v in machine_metadata(machine)]), ""]
    return out


def render(data: ReportData) -> str:
    ids = ", ".join(f"`{m.machine_id}`" for m in data.machines)
    out = ["# embedding-harness report", "",
           f"Generated {data.generated} from `{data.root}` · {len(data.machines)} machine(s): {ids}.",
           "Timings are never compared across machines; each machine has its own tables.", ""]
    if data.problems:
        out += [f"> [!WARNING]\n> {len(data.problems)} results file(s) could not be used "
                "and were skipped:"]
        out += [f"> - {esc(p)}" for p in data.problems]
        out.append("")
    out += conformance_section(data.matrix)
    out += families_section(data.machines)
    out += ["## Benchmarks", ""]
    benched = [m for m in data.machines if m.bench_rows is not None]
    if not benched:
        out += ["No machine has a bench.csv.", ""]
    for machine in benched:
        out += bench_section(machine)
    out += machines_section(data.machines)
    return "\n".join(out).rstrip() + "\n"
