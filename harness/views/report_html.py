"""report.html: one self-contained page (inline CSS and script, plots as data: URIs).

It opens from a CI artifact or an e-mail attachment with no network and no sibling files."""

from __future__ import annotations

import base64
import struct
from collections import Counter
from html import escape
from pathlib import Path

from harness.platform import STALE_INTRO
from harness.report.load import MachineResults
from harness.report.merge import (
    ConformanceMatrix,
    ReportData,
    adapter_label,
    crossover,
    crossover_table,
    machine_metadata,
)
from harness.views import tables
from harness.views.bench_pivots import (
    Pivot,
    failed_parts,
    not_measured,
    pivots,
    status_counts,
)
from harness.views.conformance_grid import MachineGrid, deviations, machine_grids
from harness.views.formats import format_gbps, format_seconds
from harness.views.report_md import DETAIL_LIMIT

MAX_EMBED_BYTES = 10 * 2**20  # a plot bigger than this is linked, not embedded
STATUS_TEXT = {"passed": "✓ pass", "failed": "✗ FAIL", "xfailed": "xfail", "not_applicable": "n/a", "skipped": "skip"}

CSS = """
:root { --pass:#d8f3dc; --fail:#ffccd5; --xfail:#fff3bf; --skip:#e9ecef; --none:#fff; --ink:#1b1f24;
        --muted:#5c6670; --line:#d0d7de; --accent:#0b5cad; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0; background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #c9d1d9; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 24px;
      z-index: 2; }
nav a { margin-right: 16px; color: var(--accent); text-decoration: none; font-weight: 600; }
main { padding: 8px 24px 48px; max-width: 1600px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 4px 16px 16px;
          margin: 16px 0; }
h2 { border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 code, h4 code { font-size: 0.95em; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f0f3f6; position: sticky; top: 38px; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: 700; background: #e7f5ff; }
.muted { color: var(--muted); font-size: 0.9em; }
.st-passed { background: var(--pass); } .st-failed { background: var(--fail); font-weight: 700; }
.st-xfailed { background: var(--xfail); }
.st-skipped, .st-not_applicable { background: var(--skip); color: var(--muted); }
.st-none { background: var(--none); color: var(--muted); }
tr.group th { background: #dde4ea; top: auto; position: static; }
.only-problems tr.all-pass, .only-problems tbody.all-pass { display: none; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 6px; border: 1px solid var(--line); }
.warning { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 8px 16px; }
pre { background: #f6f8fa; border: 1px solid var(--line); padding: 8px; overflow-x: auto; font-size: 12px;
      max-height: 400px; }
figure { display: inline-block; margin: 8px 16px 16px 0; vertical-align: top; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figcaption { color: var(--muted); font-size: 12px; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; word-break: break-word; }
details.machine { margin: 8px 0; } details.machine > summary { cursor: pointer; padding: 2px 0; }
summary h3 { display: inline; font-size: 16px; }
table.grid { font-size: 12px; margin: 4px 0 4px; }
table.grid thead th { position: static; }
table.grid th.vh { height: 250px; width: 19px; min-width: 19px; max-width: 19px; padding: 2px 0;
                   vertical-align: bottom; font-weight: 500; }
table.grid th.vh span { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap;
                        display: inline-block; max-height: 246px; overflow: hidden; text-overflow: ellipsis; }
table.grid tbody th { position: static; white-space: nowrap; font-weight: 500; padding: 0 6px; }
table.grid td { width: 19px; height: 19px; padding: 0; text-align: center; cursor: pointer; font-size: 11px; }
table.grid td.whole { text-align: left; padding: 0 6px; cursor: default; }
table.grid td.picked { outline: 2px solid var(--accent); }
.cell-detail { border: 1px solid var(--line); background: #f6f8fa; padding: 4px 8px; margin: 4px 0 12px; }
.cell-detail pre { margin: 4px 0; }
.chip { display: inline-block; padding: 0 6px; margin: 1px 2px; border: 1px solid var(--line); border-radius: 9px;
        font-size: 12px; white-space: nowrap; }
"""

# Hides grid rows that passed everywhere; shows a clicked cell's detail under its grid. Without
# script the grids stay whole and each cell's title still holds its first line.
SCRIPT = """
document.querySelectorAll('input[data-filter]').forEach(function (box) {
  var target = document.getElementById(box.getAttribute('data-filter'));
  var apply = function () { target.classList.toggle('only-problems', box.checked); };
  box.addEventListener('change', apply);
  apply();
});
document.querySelectorAll('table.grid').forEach(function (grid) {
  var panel = document.getElementById(grid.getAttribute('data-panel'));
  grid.addEventListener('click', function (event) {
    var cell = event.target.closest('td[data-check]');
    if (!cell) { return; }
    grid.querySelectorAll('td.picked').forEach(function (c) { c.classList.remove('picked'); });
    cell.classList.add('picked');
    panel.querySelector('.what').textContent = cell.parentNode.getAttribute('data-adapter') + ' \u00b7 ' +
      cell.getAttribute('data-check') + ': ' + cell.getAttribute('data-status');
    panel.querySelector('pre').textContent = cell.getAttribute('data-detail') || '(no detail recorded)';
    panel.hidden = false;
  });
});
"""


def _table(headers: list[str], rows: list[list[str]]) -> str:
    return tables.html(tables.frame(rows, headers))


STATUS_SYMBOL = {"passed": "✓", "failed": "✗", "xfailed": "≠", "not_applicable": "·", "skipped": "s"}
LEGEND = ('<p class="legend"><span class="st-passed">✓ passed</span><span class="st-failed">✗ failed</span>'
          '<span class="st-xfailed">≠ declared deviation, observed</span>'
          '<span class="st-not_applicable">· does not apply</span><span class="st-skipped">s skipped</span>'
          '<span class="st-none">blank: not run there</span></p>')


def _grid_row(grid: MachineGrid, adapter: str) -> str:
    label = f'<th title="{escape(grid.versions.get(adapter, ""))}">{escape(adapter)}</th>'
    if adapter in grid.skipped:
        why = grid.skipped[adapter]
        return (f'<tr class="problem" data-adapter="{escape(adapter)}">{label}<td class="st-skipped whole" '
                f'colspan="{max(1, len(grid.checks))}" title="{escape(why)}">skipped: {escape(why[:140])}</td></tr>')
    cells, clean = [], True
    for check in grid.checks:
        status = grid.status.at[adapter, check]
        if not isinstance(status, str):
            cells.append('<td class="st-none"></td>')
            continue
        clean = clean and status in ("passed", "not_applicable")
        detail = str(grid.detail.at[adapter, check] or "")
        first = detail.strip().splitlines()[0] if detail.strip() else ""
        tip = f"{adapter} · {check}: {STATUS_TEXT[status]}" + (f" · {first[:240]}" if first else "")
        cells.append(f'<td class="st-{status}" data-check="{escape(check)}" data-status="{STATUS_TEXT[status]}" '
                     f'data-detail="{escape(detail[:DETAIL_LIMIT])}" title="{escape(tip)}">'
                     f"{STATUS_SYMBOL[status]}</td>")
    kind = "all-pass" if clean else "problem"
    return f'<tr class="{kind}" data-adapter="{escape(adapter)}">{label}{"".join(cells)}</tr>'


def _grid(grid: MachineGrid) -> str:
    """Adapters down, checks across, one small coloured cell each; a click shows the cell's detail."""
    mid = escape(grid.machine)
    head = "".join(f'<th class="vh" title="{escape(c)}"><span>{escape(c)}</span></th>' for c in grid.checks)
    rows = "".join(_grid_row(grid, a) for a in grid.adapters)
    return (f'<table class="grid" id="grid-{mid}" data-panel="detail-{mid}"><thead><tr><th>adapter</th>{head}'
            f'</tr></thead><tbody>{rows}</tbody></table>'
            f'<div class="cell-detail" id="detail-{mid}" hidden><p class="what"></p><pre></pre></div>')


def _machine_summary(matrix: ConformanceMatrix, machine: str) -> str:
    counts = Counter(cell.status for (_, _, m), cell in matrix.cells.items() if m == machine)
    adapters = sum(1 for (_, m) in matrix.runs if m == machine)
    parts = [f"{counts[s]} {STATUS_TEXT[s].split()[-1]}" for s in ("passed", "failed", "xfailed", "not_applicable",
                                                                     "skipped") if counts[s]]
    return f"<b>{escape(machine)}</b>: {adapters} adapters; {escape(', '.join(parts))}"


def conformance_section(matrix: ConformanceMatrix) -> str:
    out = ['<section id="conformance"><h2>Does it conform?</h2>']
    if not matrix.machines:
        return out[0] + "<p>No machine has a conformance.json.</p></section>"
    out.append(f"<p>{len(matrix.adapters)} adapters on {len(matrix.machines)} machine(s): "
               f"{matrix.total('passed')} passed, {matrix.total('failed')} failed, "
               f"{matrix.total('xfailed')} xfailed (declared deviations), "
               f"{matrix.total('not_applicable')} not applicable, {matrix.total('skipped')} skipped. One grid per "
               "machine: an adapter per row, a check per column; click a cell for its detail.</p>")
    out.append(LEGEND + '<label><input type="checkbox" data-filter="conformance"> show only adapters with a '
               "failure, a deviation or a skip</label>")
    grids = machine_grids(matrix)
    # Open: the machines with a failure, else the one that ran the most adapters.
    failing = {m for m, *_ in matrix.failures()}
    opened = failing or {max(grids, key=lambda g: len(g.adapters)).machine}
    for grid in grids:
        out.append(f'<details class="machine"{" open" if grid.machine in opened else ""}><summary>'
                   f"{_machine_summary(matrix, grid.machine)}</summary>{_grid(grid)}</details>")
    failures = matrix.failures()
    if failures:
        out.append(f"<h3>Failures ({len(failures)})</h3>")
        for machine, key, check, cell in sorted(failures, key=lambda f: (f[1], f[2], f[0])):
            detail = cell.detail[:DETAIL_LIMIT] + ("\n… (truncated)" if len(cell.detail) > DETAIL_LIMIT else "")
            out.append(f"<details><summary><b>{escape(adapter_label(key))}</b> · <code>{escape(check)}</code> "
                       f"on <code>{escape(machine)}</code></summary><pre>{escape(detail)}</pre></details>")
    return "".join(out) + "</section>"


def differences_section(matrix: ConformanceMatrix, machines: list[MachineResults]) -> str:
    """Where implementations part from gather semantics: per check, the adapters that deviate as
    they declare and those that fail; declarations the runs contradict; the family views."""
    out = ['<section id="differences"><h2>Where do implementations differ?</h2>'
           "<p>Per check, the adapters that part from gather semantics on some machine: as they declare "
           "(≠, the declared reason on hover) or undeclared (✗, a failure). Every other adapter matches "
           "gather semantics on that check.</p>"]
    table = deviations(matrix)
    if table.empty:
        out.append("<p>No adapter deviates anywhere.</p>")
    else:
        rows = []
        for family, group in table.groupby("family", sort=False):
            rows.append([f"<code>{escape(family)}</code>", *("".join(
                f'<span class="chip st-{status}" title="{escape(r.reason)} ({escape(r.machines)})">'
                f"{escape(r.adapter)}</span>" for r in group[group["status"] == status].itertuples())
                for status in ("xfailed", "failed"))])
        out.append(tables.html(tables.frame(rows, ["check", "declared deviations", "failures"]),
                               attrs=' id="deviations"', cell=lambda _row, _column, built: ("", built)))
    mismatches = [[m, adapter_label(k), cap, str(d), str(o)]
                  for (k, m), run in matrix.runs.items() for cap, d, o in run.mismatches]
    if mismatches:
        out.append("<h3>Declared behaviour that differs from what was observed</h3>")
        out.append(_table(["machine", "adapter", "capability", "declared", "observed"], mismatches))
    stale = matrix.stale_rule_rows()
    if stale:
        out.append(f'<h3>Stale platform declarations</h3><p>{escape(STALE_INTRO)}</p>')
        out.append(_table(["adapter", "checks", "declared to hold where", "ran on"], stale))
    return "".join(out) + "</section>" + families_section(machines)


_FAMILY_CELL_CLASS = (("pass", "st-passed"), ("**FAIL**", "st-failed"), ("xfail", "st-xfailed"),
                      ("n/a", "st-not_applicable"), ("skip", "st-skipped"))


def _family_cell(_row, _column, text: str) -> tuple[str, str]:
    """A family table cell, coloured by the check status it starts with."""
    cls = next((c for prefix, c in _FAMILY_CELL_CLASS if text.startswith(prefix)), "")
    return (f' class="{cls}"' if cls else ""), escape(text.replace("**FAIL**", "FAIL"))


def families_section(machines: list[MachineResults]) -> str:
    """Per machine, the family views the Markdown report shows (harness.views.conformance.family_tables)."""
    from harness.views.conformance import FAMILIES_INTRO, FAMILIES_TITLE, family_tables

    out = []
    for machine in machines:
        families = family_tables(machine.conformance["adapters"]) if machine.conformance else []
        if not families:
            continue
        out.append(f'<details class="machine"><summary><h3><code>{escape(machine.machine_id)}</code></h3> '
                   f'<span class="muted">{", ".join(escape(t.title) for t in families)}</span></summary>')
        for t in families:
            out.append(f"<h4>{escape(t.title)}</h4><p class=\"muted\">{escape(t.intro)}</p>"
                       + (tables.html(tables.frame(t.rows, t.headers), cell=_family_cell) if t.rows else "")
                       + (f"<p>{escape(t.note)}</p>" if t.note else ""))
        out.append("</details>")
    if not out:
        return ""
    return (f'<section id="families"><h2>{escape(FAMILIES_TITLE)}</h2><p>{escape(FAMILIES_INTRO)}</p>'
            + "".join(out) + "</section>")


def _pivot(pivot: Pivot) -> str:
    best = {v: pivot.best(v) for v in pivot.vocabs}

    def cell(label, vocab, _value) -> tuple[str, str]:
        found = pivot.cells.get((label, vocab))
        if found is None:
            return ' class="st-none"', "—"
        if found.status != "ok":
            cls = "st-failed" if found.status == "error" else "st-skipped"
            return f' class="{cls}" title="{escape(found.reason)}"', escape(found.status)
        shown = f'{escape(format_seconds(found.median_s))} <span class="muted">{escape(format_gbps(found.gbps))}</span>'
        return f' class="{"num best" if best[vocab] == label else "num"}"', shown

    grid = tables.frame([[None] * len(pivot.vocabs) for _ in pivot.rows], pivot.vocabs)
    grid.index = pivot.rows
    return f"<h4>{escape(pivot.title)}</h4>" + tables.html(
        grid, index="adapter", attrs=' class="pivot"', cell=cell,
        column_name=lambda v: f"vocab {v:,}" if isinstance(v, int) else "vocab ?")


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the PNG header (checked by the loader)."""
    return struct.unpack(">II", data[16:24])


def _figure(path: Path, root: Path) -> str:
    data = path.read_bytes()
    rel = path.relative_to(root).as_posix()
    if len(data) > MAX_EMBED_BYTES:
        return f'<p class="muted">{escape(rel)}: too large to embed ({len(data) // 2**20} MiB)</p>'
    width, height = png_size(data)
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<figure><img class="plot" src="{uri}" width="{width}" height="{height}" alt="{escape(path.stem)}">'
            f"<figcaption>{escape(rel)}</figcaption></figure>")


def bench_section(machine: MachineResults, root: Path) -> str:
    """One machine's benchmark tables, folded: its summary line says what it holds."""
    rows = machine.bench_rows or []
    counts = status_counts(rows)
    mid = escape(machine.machine_id)
    devices = ", ".join(sorted({str(r.get("device")) for r in rows if r.get("status") == "ok"})) or "nothing measured"
    out = [f'<details class="machine"><summary><h3 id="bench-{mid}">Machine <code>{mid}</code></h3> '
           f'<span class="muted">{escape(devices)}: {counts["ok"]} rows measured, {counts["skipped"]} skipped, '
           f'{counts["error"]} errors</span></summary>',
           f"<p>Median time per call and GB/s; <b>bold</b> = fastest in its column. "
           f"All rows: <code>{mid}/{escape(machine.bench_subdir)}bench.csv</code>.</p>"]
    profile = (machine.bench_meta or {}).get("profile")
    if profile and profile != "full":
        out.append(f"<p>Benchmark profile <b>{escape(str(profile))}</b> (no full-profile run on this machine).</p>")
    out += [f'<div class="warning">Benchmark part <b>{escape(part)}</b> FAILED: {escape(message)}</div>'
            for part, message in failed_parts(machine).items()]
    out += [_pivot(p) for p in pivots(rows)]
    for status, title in (("error", "Errors"), ("skipped", "Skipped")):
        groups = not_measured(rows, status)
        if groups:
            out.append(f"<h4>{title}</h4>" + _table(["adapter", "device", "reason", "rows"],
                                                    [[a, d, r[:300], n] for a, d, r, n in groups]))
    if machine.plots:
        out.append("<h4>Plots</h4>" + "".join(_figure(p, root) for p in machine.plots))
    return "".join(out) + "</details>"


def fastest_rows(machines: list[MachineResults]) -> list[list[str]]:
    """Per machine and headline table (device, pass, dim), the fastest adapter at the largest
    vocabulary measured: the figure a reader compares first."""
    out = []
    for machine in machines:
        for pivot in pivots(machine.bench_rows or []):
            measured = [v for v in pivot.vocabs if pivot.best(v) is not None]
            if not measured:
                continue
            vocab = measured[-1]
            best = pivot.best(vocab)
            cell = pivot.cells[(best, vocab)]
            out.append([machine.machine_id, pivot.device, pivot.pass_, str(pivot.dim), _count(vocab),
                        _count(pivot.n_ids), best, format_seconds(cell.median_s), format_gbps(cell.gbps)])
    return out


def _count(n) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"


def speed_section(machines: list[MachineResults], root: Path) -> str:
    benched = [m for m in machines if m.bench_rows is not None]
    title = '<section id="benchmarks"><h2>How fast, on the CPU and on a GPU?</h2>'
    if not benched:
        return title + "<p>No machine has a bench.csv.</p></section>"
    head = ("<p>Timings are never compared across machines: each machine has its own tables (open one below). "
            "First, per machine and headline table, the fastest adapter at the largest vocabulary measured "
            "(float32, uniform ids):</p>")
    fastest = _table(["machine", "device", "pass", "dim", "vocab", "ids per call", "fastest", "time per call", "GB/s"],
                     fastest_rows(benched))
    return (title + head + fastest
            + "".join(bench_section(m, root) for m in benched) + "</section>")


def onehot_section(machines: list[MachineResults]) -> str:
    """Per machine, where a one-hot matmul stops being competitive with the gather."""
    out = []
    for machine in machines:
        summary = crossover(machine) if machine.bench_rows is not None else None
        if summary is None:
            continue
        shaped = crossover_table(summary)
        mid = escape(machine.machine_id)
        table = (((f'<p class="muted">{escape(shaped[0])}</p>' if shaped[0] else "") + _table(*shaped[1:]))
                 if shaped else f"<p>{escape(str(summary))}</p>")
        rows = f"{len(shaped[2])} one-hot adapter × pass × dim rows" if shaped else ""
        out.append(f'<details class="machine"{"" if out else " open"}><summary><h3 id="onehot-{mid}"><code>{mid}'
                   f'</code></h3> <span class="muted">{rows}</span></summary>{table}</details>')
    body = "".join(out) or "<p>No benchmark run recorded a crossover.</p>"
    return ('<section id="onehot"><h2>Where does one-hot pay?</h2><p>A one-hot matmul against the gather of '
            "the same framework, per table shape: where the one-hot is still competitive, and from which "
            "vocabulary on it is not.</p>" + body + "</section>")


def machine_card(machine: MachineResults) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in machine_metadata(machine))
    mid = escape(machine.machine_id)
    return (f'<details class="machine"><summary><h3 id="machine-{mid}">Machine <code>{mid}</code></h3></summary>'
            f'<dl class="meta">{items}</dl></details>')


def render(data: ReportData) -> str:
    ids = ", ".join(m.machine_id for m in data.machines)
    parts = [f"<header><h1>embedding-harness report</h1><p>Generated {escape(data.generated)} · "
             f"{len(data.machines)} machine(s): {escape(ids)}</p></header>",
             '<nav><a href="#conformance">Does it conform?</a><a href="#differences">Where do they differ?</a>'
             '<a href="#benchmarks">How fast?</a><a href="#onehot">Where does one-hot pay?</a>'
             '<a href="#machines">Machines</a></nav><main>']
    if data.problems:
        items = "".join(f"<li><code>{escape(p)}</code></li>" for p in data.problems)
        parts.append(f'<div class="warning" id="problems"><b>{len(data.problems)} results file(s) could not '
                     f"be used and were skipped:</b><ul>{items}</ul></div>")
    parts.append(conformance_section(data.matrix))
    parts.append(differences_section(data.matrix, data.machines))
    parts.append(speed_section(data.machines, data.root))
    parts.append(onehot_section(data.machines))
    parts.append('<section id="machines"><h2>Machines</h2>'
                 + "".join(machine_card(m) for m in data.machines) + "</section>")
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'  # stops the browser asking the network for /favicon.ico
            f"<title>embedding-harness report</title><style>{CSS}</style></head><body>"
            + "".join(parts) + f"</main><script>{SCRIPT}</script></body></html>\n")
