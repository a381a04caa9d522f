"""python -m harness.report end to end, on what the real writers produced (tests/real_results.py):
both files, machines kept apart, bad inputs survived, a renamed column or key never lost quietly."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from html import escape
from pathlib import Path

import pytest
from real_results import MACHINES

from harness.report import build_report
from harness.report.__main__ import main
from harness.report.merge import collect
from harness.views import report_html as html
from harness.views import report_md as markdown
from harness.views.formats import format_seconds
from harness.views.report_md import table

ROOT = Path(__file__).resolve().parents[2]
A, B = MACHINES


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: content hash and modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def section(text: str, start: str, end: str | None) -> str:
    body = text.split(start, 1)[1]
    return body.split(end, 1)[0] if end else body


def summary_text(adapter: dict) -> str:
    """The adapters x machines cell the report must show, from the statuses conformance.json holds."""
    counts = Counter(c["status"] for c in adapter["checks"])
    parts = [f"{counts['passed']} passed"] + [f"{counts[s]} {s.replace('_', ' ')}"
                                              for s in ("failed", "xfailed", "not_applicable", "skipped") if counts[s]]
    return ("❌ " if counts["failed"] else "✅ ") + ", ".join(parts)


def headline_median(real, mid: str, adapter: str) -> str:
    """The formatted median of a cell the headline pivot shows (float32, forward, uniform, smallest vocab)."""
    rows = [r for r in real.bench_rows(mid) if r["adapter"] == adapter and r["status"] == "ok"
            and r["dtype"] == "float32" and r["pass"] == "forward" and r["distribution"] == "uniform"
            and int(r["n_ids"]) > 1]  # not the launch floor, which has no pivot
    row = min(rows, key=lambda r: int(r["vocab"]))
    return format_seconds(float(row["median_s"]))


def test_two_machines_both_files_machines_apart(real_tree, capsys):
    root = real_tree.root
    before = {m: snapshot(root / m) for m in MACHINES}
    assert main(["--results", str(root)]) == 0
    assert "wrote" in capsys.readouterr().out
    # Only the two report files were added at the top; no machine folder was touched.
    assert sorted(p.name for p in root.iterdir() if p.is_file()) == ["REPORT.md", "report.html"]
    assert {m: snapshot(root / m) for m in MACHINES} == before

    md = (root / "REPORT.md").read_text()
    page = (root / "report.html").read_text()
    # Conformance: one matrix with a column per machine, each cell what that machine's file says.
    assert re.search(rf"\| adapter\s+\| {A}\s+\| {B}\s+\|", md)
    for column, mid in enumerate(MACHINES):
        for adapter in real_tree.conformance(mid)["adapters"]:
            if adapter["skip_reason"]:
                continue
            line = next(x for x in md.splitlines() if x.startswith(f"| {adapter['id']} "))
            assert line.split("|")[2 + column].strip() == summary_text(adapter), line
    assert "❌" in section(md, "### Adapters × machines", "###")  # the broken plug-ins show as failing
    # Benchmarks: each machine's own numbers in its own section, never in the other's.
    bench = section(md, "## Benchmarks", "## Machines")
    a, b = section(bench, f"### `{A}`", f"### `{B}`"), section(bench, f"### `{B}`", None)
    only_a, only_b = "numpy-onehot", "fault-large-tables"  # measured on one machine each
    assert headline_median(real_tree, A, only_a) in a and only_a not in b
    assert headline_median(real_tree, B, only_b) in b and only_b not in a
    assert "RuntimeError: kernel launch failed: table too large" in b  # B's error rows, with the reason
    # Machine metadata per machine: each shows its own bench run, not the other's.
    machines = section(md, "## Machines", None)
    run_a, run_b = (real_tree.bench_meta(m)["run_id"] for m in MACHINES)
    assert run_a != run_b
    card_a, card_b = section(machines, f"### `{A}`", f"### `{B}`"), section(machines, f"### `{B}`", None)
    assert run_a in card_a and run_b not in card_a
    assert run_b in card_b and run_a not in card_b
    cpu = real_tree.conformance(A)["machine"]["cpu_model"]
    assert re.search(rf"\| cpu_model\s+\| {re.escape(cpu)}\s+\|", md)
    for mid in MACHINES:
        assert f'id="bench-{mid}"' in page and f'id="machine-{mid}"' in page


def test_html_is_self_contained_with_the_plots_embedded(real_tree):
    build_report(real_tree.root)
    page = (real_tree.root / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.I)
    assert "<link rel=\"stylesheet\"" not in page and "@import" not in page
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    plots = [p for m in MACHINES for p in real_tree.plots(m)]
    assert len(plots) >= 2
    assert [base64.b64decode(u) for u in uris] == [p.read_bytes() for p in plots]


def test_one_corrupt_file_is_named_and_the_report_builds_from_the_rest(real_tree, capsys):
    broken = real_tree.conformance_path(B)
    broken.write_text('{"schema": "embedding-harness/conformance/1", "adapters": [{"id": "numpy-ga')
    assert main(["--results", str(real_tree.root)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"skipped: {broken}: not valid JSON")
    md = (real_tree.root / "REPORT.md").read_text()
    assert str(broken) in md  # the report itself says what is missing
    page = (real_tree.root / "report.html").read_text()
    assert '<div class="warning" id="problems">' in page and str(broken) in page
    assert re.search(rf"\| adapter\s+\| {A}\s+\|$", md, re.M)  # B's conformance left out
    assert f"### `{B}`" in section(md, "## Benchmarks", "## Machines")  # B's bench kept


def test_conformance_only_and_bench_only_machines(real_tree):
    shutil.rmtree(real_tree.bench_dir(A))  # A: conformance only
    for name in ("conformance.json", "conformance.md"):  # B: bench only
        (real_tree.machine(B) / name).unlink()
    result = build_report(real_tree.root)
    assert result.exit_code == 0, result.data.problems
    md = (real_tree.root / "REPORT.md").read_text()
    assert re.search(rf"\| adapter\s+\| {A}\s+\|$", md, re.M)
    bench_part = section(md, "## Benchmarks", "## Machines")
    assert f"### `{B}`" in bench_part and A not in bench_part


def test_cuda_rows_and_adapters_get_their_own_tables(real_tree):
    path = real_tree.conformance_path(A)
    data = json.loads(path.read_text())
    cuda = json.loads(json.dumps(data["adapters"][0]))  # numpy-gather, as the registry names a GPU slot
    cuda.update(id="numpy-gather-cuda", device="cuda")
    data["adapters"].append(cuda)
    path.write_text(json.dumps(data))
    header, rows = real_tree.bench_header(A), real_tree.bench_rows(A)
    rows += [dict(r, device="cuda") for r in rows if r["adapter"] == "numpy-gather"]
    with open(real_tree.bench_csv(A), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    build_report(real_tree.root)
    md = (real_tree.root / "REPORT.md").read_text()
    dim = next(r["dim"] for r in rows if r["adapter"] == "numpy-gather" and int(r["n_ids"]) > 1)
    cpu, gpu = f"#### cpu · forward · dim {dim}", f"#### cuda · forward · dim {dim}"
    assert cpu in md and gpu in md and md.index(cpu) < md.index(gpu)
    assert "| numpy-gather-cuda " in md


def test_untrusted_text_is_escaped_in_html_and_markdown(real_tree):
    path = real_tree.conformance_path(A)
    data = json.loads(path.read_text())
    data["adapters"][0]["checks"][0].update(check="forward|<script>alert(1)</script>", status="failed",
                                            detail="line one\n| not a table row")
    path.write_text(json.dumps(data))
    build_report(real_tree.root)
    page = (real_tree.root / "report.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # only the report's own filter script
    md = (real_tree.root / "REPORT.md").read_text()
    assert "forward\\|&lt;script&gt;" in md  # the pipe cannot split the row, the tag is text
    assert "<script>" not in md


def test_table_pads_and_escapes():
    out = table(["a", "bb"], [["x|y", "multi\nline"]])
    assert out.splitlines() == ["| a    | bb         |", "|------|------------|", "| x\\|y | multi line |"]


def test_nothing_to_report(tmp_path, capsys):
    assert main(["--results", str(tmp_path / "absent")]) == 4
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--results", str(tmp_path / "empty")]) == 4
    assert not (tmp_path / "empty" / "REPORT.md").exists()


def test_refuses_to_write_into_a_machine_folder(real_tree, capsys):
    # B without conformance: its only results are the bench's profile-tiny/ folder, as the bench
    # writes every profile but the full one; still a machine folder.
    for name in ("conformance.json", "conformance.md"):
        (real_tree.machine(B) / name).unlink()
    for mid in MACHINES:
        with pytest.raises(SystemExit) as info:
            main(["--results", str(real_tree.machine(mid))])
        assert info.value.code == 2
        assert "is a machine folder" in capsys.readouterr().err
        assert not (real_tree.machine(mid) / "REPORT.md").exists()


def test_cli_help_documents_options_and_exit_codes():
    out = subprocess.run([sys.executable, "-m", "harness.report", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    for needle in ("--results DIR", "--compare OLD", "--new NEW", "--force", "--floor", "exit codes:",
                   "3  done, but some results file"):
        assert needle in out.stdout


def test_cli_subprocess_builds_the_report(real_tree):
    out = subprocess.run([sys.executable, "-m", "harness.report", "--results", str(real_tree.root)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert f"(2 machine(s): {A}, {B})" in out.stdout
    assert (real_tree.root / "REPORT.md").exists() and (real_tree.root / "report.html").exists()


# ---- a schema change breaks here, not for a user ------------------------------------------------


def _render(root: Path) -> tuple[str, list[str]]:
    data = collect(root)
    data.generated = "(fixed)"
    return markdown.render(data) + html.render(data), data.problems


def _renamed_csv_column(path: Path, column: str) -> None:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    rows[0] = [f"{c}_renamed" if c == column else c for c in rows[0]]
    with open(path, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def _json_renames(doc: dict):
    """(label, mutate) for every key of the document, its machine record, its adapters, their checks."""
    def top(key):
        return lambda d: d.__setitem__(f"{key}_renamed", d.pop(key))

    def each(key, objects):
        def mutate(d):
            for obj in objects(d):
                if key in obj:
                    obj[f"{key}_renamed"] = obj.pop(key)
        return mutate

    def adapters(d):
        return d["adapters"]

    def checks(d):
        return [c for a in d["adapters"] for c in a["checks"]]

    yield from ((k, top(k)) for k in doc)
    yield from ((f"machine.{k}", each(k, lambda d: [d["machine"]])) for k in doc["machine"])
    yield from ((f"adapters[].{k}", each(k, adapters)) for k in sorted({k for a in adapters(doc) for k in a}))
    yield from ((f"checks[].{k}", each(k, checks)) for k in sorted({k for c in checks(doc) for k in c}))


def test_a_renamed_column_or_key_is_refused_or_shown_never_silently_dropped(real_tree, capsys):
    """Rename any bench.csv column or conformance.json key the real writers produce, as a writer
    change would: the report either refuses that file by name, or shows the same report (the
    report does not read it), or shows the value under its new name. Never a report that quietly
    lost what the old name held."""
    root = real_tree.root
    baseline, problems = _render(root)
    assert problems == []
    silent = []
    for mid in MACHINES:
        path = real_tree.bench_csv(mid)
        original = path.read_bytes()
        for column in real_tree.bench_header(mid):
            _renamed_csv_column(path, column)
            out, problems = _render(root)
            if not any(str(path) in p and f"missing column(s) {column}" in p for p in problems) and out != baseline:
                silent.append(f"{mid} bench.csv column {column}")
            path.write_bytes(original)
        path = real_tree.conformance_path(mid)
        original = path.read_bytes()
        for label, mutate in _json_renames(json.loads(original)):
            doc = json.loads(original)
            mutate(doc)
            path.write_text(json.dumps(doc))
            out, problems = _render(root)
            key = label.rsplit(".", 1)[-1]
            refused = any(p.startswith(f"{path}: ") and key in p.removeprefix(f"{path}: ") for p in problems)
            shown = f"{key}_renamed" in out
            if not (refused or out == baseline or shown):
                silent.append(f"{mid} conformance.json key {label}")
            path.write_bytes(original)
    assert silent == []

    # And end to end, the one a user meets first: the CLI says which file and column, and exits 3.
    _renamed_csv_column(real_tree.bench_csv(A), "skip_reason")
    assert main(["--results", str(root)]) == 3
    err = capsys.readouterr().err
    assert f"skipped: {real_tree.bench_csv(A)}: missing column(s) skip_reason" in err


def test_the_html_report_shows_what_compiling_changes_as_the_markdown_does(real_tree):
    path = real_tree.conformance_path(A)
    data = json.loads(path.read_text())
    eager = data["adapters"][0]
    compiled = json.loads(json.dumps(eager))  # a compiled twin whose first check turned out otherwise
    compiled.update(id="x-<b>jit</b>", eager_twin=eager["id"], mode="jit")
    first = next(c for c in compiled["checks"] if c["status"] == "passed")
    first.update(status="xfailed", detail="declared deviation: compiled <differs>")
    data["adapters"].append(compiled)
    path.write_text(json.dumps(data))
    build_report(real_tree.root)
    page = (real_tree.root / "report.html").read_text()
    families = section(page, '<section id="families">', "</section>")
    row = (f"<tr><td>x-&lt;b&gt;jit&lt;/b&gt;</td><td>{eager['id']}</td><td>check {escape(first['check'])}</td>"
           f'<td class="st-passed">passed</td>'
           f'<td class="st-xfailed">xfailed: declared deviation: compiled &lt;differs&gt;</td></tr>')
    assert row in families
    assert "<b>jit</b>" not in page
    md = (real_tree.root / "REPORT.md").read_text()
    assert "What compiling changes" in md and "x-&lt;b&gt;jit&lt;/b&gt;" in md
