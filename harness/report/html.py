"""report.html: one self-contained page (inline CSS and script, plots as data: URIs).

It opens from a CI artifact or an e-mail attachment with no network and no sibling files."""

from __future__ import annotations

import base64
import struct
from html import escape
from pathlib import Path

from harness.platform import STALE_INTRO
from harness.report.benchtables import (
    Pivot,
    failed_parts,
    format_gbps,
    format_seconds,
    not_measured,
    pivots,
    status_counts,
)
from harness.report.load import MachineResults
from harness.report.markdown import DETAIL_LIMIT
from harness.report.merge import (
    AdapterKey,
    ConformanceMatrix,
    ReportData,
    adapter_label,
    crossover,
    crossover_table,
    machine_metadata,
)

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
"""

# Hides matrix rows that passed everywhere; without script the full matrix simply stays visible.
SCRIPT = """
document.querySelectorAll('input[data-filter]').forEach(function (box) {
  var target = document.getElementById(box.getAttribute('data-filter'));
  var apply = function () { target.classList.toggle('only-problems', box.checked); };
  box.addEventListener('change', apply);
  apply();
});
"""


def _table(headers: list[str], rows: list[list[str]], raw: bool = False) -> str:
    """A plain table; cells are escaped unless ``raw`` (already-built HTML)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _summary_cell(matrix: ConformanceMatrix, key: AdapterKey, machine: str) -> str:
    run = matrix.runs.get((key, machine))
    if run is None:
        return '<td class="st-none">—</td>'
    if run.skip_reason:
        return f'<td class="st-skipped" title="{escape(run.skip_reason)}">skipped: ' \
               f'{escape(run.skip_reason[:80])}</td>'
    c = run.counts
    cls = "st-failed" if c["failed"] else "st-passed"
    parts = [f"{c['passed']} passed"] + [f"{c[s]} {s.replace('_', ' ')}"
                                         for s in ("failed", "xfailed", "not_applicable", "skipped") if c[s]]
    versions = ", ".join(f"{k} {v}" for k, v in run.versions.items())
    return f'<td class="{cls}" title="{escape(versions)}">{escape(", ".join(parts))}</td>'


def conformance_section(matrix: ConformanceMatrix) -> str:
    out = ['<section id="conformance"><h2>Conformance</h2>']
    if not matrix.machines:
        return out[0] + "<p>No machine has a conformance.json.</p></section>"
    out.append(f"<p>{len(matrix.adapters)} adapters on {len(matrix.machines)} machine(s): "
               f"{matrix.total('passed')} passed, {matrix.total('failed')} failed, "
               f"{matrix.total('xfailed')} xfailed (declared deviations), "
               f"{matrix.total('not_applicable')} not applicable, {matrix.total('skipped')} skipped.</p>")
    out.append('<p class="legend"><span class="st-passed">passed</span><span class="st-failed">failed</span>'
               '<span class="st-xfailed">xfailed: declared deviation</span>'
               '<span class="st-not_applicable">n/a: does not apply to that adapter</span>'
               '<span class="st-skipped">skipped</span><span class="st-none">— not run on that machine</span></p>')
    head = "".join(f"<th>{escape(m)}</th>" for m in matrix.machines)
    rows = "".join(f"<tr><th>{escape(adapter_label(k))}</th>"
                   + "".join(_summary_cell(matrix, k, m) for m in matrix.machines) + "</tr>"
                   for k in matrix.adapters)
    out.append(f'<h3>Adapters × machines</h3><table id="conformance-summary"><thead><tr><th>adapter</th>'
               f"{head}</tr></thead><tbody>{rows}</tbody></table>")

    out.append('<h3>Matrix: adapter × check × machine</h3><label><input type="checkbox" '
               'data-filter="conformance-matrix"> show only checks that did not pass everywhere</label>')
    body = []
    for key in matrix.adapters:
        clean = all(matrix.all_passed(key, c) for c in matrix.checks[key]) and not any(
            (r := matrix.runs.get((key, m))) and r.skip_reason for m in matrix.machines)
        body.append(f'<tbody class="{"all-pass" if clean else "problem"}"><tr class="group">'
                    f'<th colspan="{len(matrix.machines) + 1}">{escape(adapter_label(key))}</th></tr>')
        for check in matrix.checks[key]:
            cls = "all-pass" if matrix.all_passed(key, check) else "problem"
            cells = []
            for machine in matrix.machines:
                cell = matrix.cell(key, check, machine)
                if cell is None:
                    cells.append('<td class="st-none">—</td>')
                    continue
                tip = cell.detail[:500] or ", ".join(
                    ([f"{cell.examples} examples"] if cell.examples else [])
                    + ([f"{cell.duration_s:.2f} s"] if isinstance(cell.duration_s, (int, float)) else []))
                cells.append(f'<td class="st-{cell.status}" title="{escape(tip)}">'
                             f"{STATUS_TEXT[cell.status]}</td>")
            body.append(f'<tr class="{cls}"><td>{escape(check)}</td>{"".join(cells)}</tr>')
        # An adapter skipped whole on a machine has no check rows: say so in its group.
        skips = [m for m in matrix.machines if (r := matrix.runs.get((key, m))) and r.skip_reason]
        if skips:
            body.append('<tr class="problem"><td class="muted">(whole adapter)</td>' + "".join(
                '<td class="st-skipped">skipped</td>' if m in skips else '<td class="st-none"></td>'
                for m in matrix.machines) + "</tr>")
        body.append("</tbody>")
    out.append(f'<table id="conformance-matrix"><thead><tr><th>check</th>{head}</tr></thead>'
               f'{"".join(body)}</table>')

    failures = matrix.failures()
    if failures:
        out.append('<h3>Failures</h3>')
        for machine, key, check, cell in sorted(failures, key=lambda f: (f[1], f[2], f[0])):
            detail = cell.detail[:DETAIL_LIMIT] + ("\n… (truncated)" if len(cell.detail) > DETAIL_LIMIT else "")
            out.append(f"<details><summary><b>{escape(adapter_label(key))}</b> · <code>{escape(check)}</code> "
                       f"on <code>{escape(machine)}</code></summary><pre>{escape(detail)}</pre></details>")
    mismatches = [[m, adapter_label(k), cap, str(d), str(o)]
                  for (k, m), run in matrix.runs.items() for cap, d, o in run.mismatches]
    if mismatches:
        out.append("<h3>Declared behaviour that differs from what was observed</h3>")
        out.append(_table(["machine", "adapter", "capability", "declared", "observed"], mismatches))
    stale = matrix.stale_rule_rows()
    if stale:
        out.append(f'<h3>Stale platform declarations</h3><p>{escape(STALE_INTRO)}</p>')
        out.append(_table(["adapter", "checks", "declared to hold where", "ran on"], stale))
    return "".join(out) + "</section>"


_FAMILY_CELL_CLASS = (("pass", "st-passed"), ("**FAIL**", "st-failed"), ("xfail", "st-xfailed"),
                      ("n/a", "st-not_applicable"), ("skip", "st-skipped"))


def _family_cell(text: str) -> str:
    """A family table cell, coloured by the check status it starts with."""
    cls = next((c for prefix, c in _FAMILY_CELL_CLASS if text.startswith(prefix)), "")
    shown = escape(text.replace("**FAIL**", "FAIL"))
    return f'<td class="{cls}">{shown}</td>' if cls else f"<td>{shown}</td>"


def families_section(machines: list[MachineResults]) -> str:
    """Per machine, the family views the Markdown report shows (harness.conformance.family_tables)."""
    from harness.conformance import FAMILIES_INTRO, FAMILIES_TITLE, family_tables

    out = []
    for machine in machines:
        tables = family_tables(machine.conformance["adapters"]) if machine.conformance else []
        if not tables:
            continue
        out.append(f"<h3><code>{escape(machine.machine_id)}</code></h3>")
        for t in tables:
            head = "".join(f"<th>{escape(h)}</th>" for h in t.headers)
            body = "".join("<tr>" + "".join(_family_cell(c) for c in row) + "</tr>" for row in t.rows)
            out.append(f"<h4>{escape(t.title)}</h4><p class=\"muted\">{escape(t.intro)}</p>"
                       + (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" if t.rows else "")
                       + (f"<p>{escape(t.note)}</p>" if t.note else ""))
    if not out:
        return ""
    return (f'<section id="families"><h2>{escape(FAMILIES_TITLE)}</h2><p>{escape(FAMILIES_INTRO)}</p>'
            + "".join(out) + "</section>")


def _pivot(pivot: Pivot) -> str:
    best = {v: pivot.best(v) for v in pivot.vocabs}
    head = "".join(f"<th>vocab {v:,}</th>" if isinstance(v, int) else "<th>vocab ?</th>" for v in pivot.vocabs)
    rows = []
    for label in pivot.rows:
        cells = []
        for vocab in pivot.vocabs:
            cell = pivot.cells.get((label, vocab))
            if cell is None:
                cells.append('<td class="st-none">—</td>')
            elif cell.status != "ok":
                cls = "st-failed" if cell.status == "error" else "st-skipped"
                cells.append(f'<td class="{cls}" title="{escape(cell.reason)}">{escape(cell.status)}</td>')
            else:
                cls = "num best" if best[vocab] == label else "num"
                cells.append(f'<td class="{cls}">{escape(format_seconds(cell.median_s))} '
                             f'<span class="muted">{escape(format_gbps(cell.gbps))}</span></td>')
        rows.append(f"<tr><th>{escape(label)}</th>{''.join(cells)}</tr>")
    return (f"<h4>{escape(pivot.title)}</h4><table class=\"pivot\"><thead><tr><th>adapter</th>{head}</tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


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
    rows = machine.bench_rows or []
    counts = status_counts(rows)
    mid = escape(machine.machine_id)
    out = [f'<h3 id="bench-{mid}">Machine <code>{mid}</code></h3>',
           f"<p>{len(rows)} rows: {counts['ok']} measured, {counts['skipped']} skipped, {counts['error']} "
           f"errors. Median time per call and GB/s; <b>bold</b> = fastest in its column. "
           f"All rows: <code>{mid}/{escape(machine.bench_subdir)}bench.csv</code>.</p>"]
    profile = (machine.bench_meta or {}).get("profile")
    if profile and profile != "full":
        out.append(f"<p>Benchmark profile <b>{escape(str(profile))}</b> (no full-profile run on this machine).</p>")
    out += [f'<div class="warning">Benchmark part <b>{escape(part)}</b> FAILED: {escape(message)}</div>'
            for part, message in failed_parts(machine).items()]
    summary = crossover(machine)
    if summary is not None:
        shaped = crossover_table(summary)
        out.append("<h4>Crossover: where one-hot stops being competitive</h4>")
        if shaped:
            caption, headers, cells = shaped
            out.append((f'<p class="muted">{escape(caption)}</p>' if caption else "") + _table(headers, cells))
        else:
            out.append(f"<p>{escape(str(summary))}</p>")
    out += [_pivot(p) for p in pivots(rows)]
    for status, title in (("error", "Errors"), ("skipped", "Skipped")):
        groups = not_measured(rows, status)
        if groups:
            out.append(f"<h4>{title}</h4>" + _table(["adapter", "device", "reason", "rows"],
                                                    [[a, d, r[:300], n] for a, d, r, n in groups]))
    if machine.plots:
        out.append("<h4>Plots</h4>" + "".join(_figure(p, root) for p in machine.plots))
    return "".join(out)


def machine_card(machine: MachineResults) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in machine_metadata(machine))
    mid = escape(machine.machine_id)
    return f'<h3 id="machine-{mid}">Machine <code>{mid}</code></h3><dl class="meta">{items}</dl>'


def render(data: ReportData) -> str:
    ids = ", ".join(m.machine_id for m in data.machines)
    parts = [f"<header><h1>embedding-harness report</h1><p>Generated {escape(data.generated)} · "
             f"{len(data.machines)} machine(s): {escape(ids)}</p></header>",
             '<nav><a href="#conformance">Conformance</a><a href="#families">Compiled, options, bags</a>'
             '<a href="#benchmarks">Benchmarks</a>'
             '<a href="#machines">Machines</a></nav><main>']
    if data.problems:
        items = "".join(f"<li><code>{escape(p)}</code></li>" for p in data.problems)
        parts.append(f'<div class="warning" id="problems"><b>{len(data.problems)} results file(s) could not '
                     f"be used and were skipped:</b><ul>{items}</ul></div>")
    parts.append(conformance_section(data.matrix))
    parts.append(families_section(data.machines))
    benched = [m for m in data.machines if m.bench_rows is not None]
    parts.append('<section id="benchmarks"><h2>Benchmarks</h2><p>Timings are never compared across '
                 "machines: each machine has its own tables.</p>"
                 + ("".join(bench_section(m, data.root) for m in benched) or "<p>No machine has a bench.csv.</p>")
                 + "</section>")
    parts.append('<section id="machines"><h2>Machines</h2>'
                 + "".join(machine_card(m) for m in data.machines) + "</section>")
    return ('<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'  # stops the browser asking the network for /favicon.ico
            f"<title>embedding-harness report</title><style>{CSS}</style></head><body>"
            + "".join(parts) + f"</main><script>{SCRIPT}</script></body></html>\n")
