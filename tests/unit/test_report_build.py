"""python -m harness.report end to end: both files, machines kept apart, bad inputs survived."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report import build_report
from harness.report.__main__ import main
from harness.report.benchtables import format_seconds
from harness.report.markdown import table
from harness.report.sample import write_machine, write_sample_tree

ROOT = Path(__file__).resolve().parents[2]
MACHINES = ("alpha-box", "beta-box")


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    write_sample_tree(tmp_path, MACHINES)
    return tmp_path


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: content hash and modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def section(text: str, start: str, end: str | None) -> str:
    body = text.split(start, 1)[1]
    return body.split(end, 1)[0] if end else body


def headline_median(folder: Path) -> str:
    """The formatted median of one cell that the headline pivot shows."""
    with open(folder / "bench.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["adapter"] == "torch-gather" and r["status"] == "ok"
                   and r["dtype"] == "float32" and r["pass"] == "forward" and r["distribution"] == "uniform"
                   and r["dim"] == "64" and r["vocab"] == "1000")
    return format_seconds(float(row["median_s"]))


def test_two_machines_both_files_machines_apart(tree, capsys):
    before = {m: snapshot(tree / m) for m in MACHINES}
    assert main(["--results", str(tree)]) == 0
    assert "wrote" in capsys.readouterr().out
    # Only the two report files were added at the top; no machine folder was touched.
    assert sorted(p.name for p in tree.iterdir() if p.is_file()) == ["REPORT.md", "report.html"]
    assert {m: snapshot(tree / m) for m in MACHINES} == before

    md = (tree / "REPORT.md").read_text()
    html = (tree / "report.html").read_text()
    # Conformance: one matrix with a column per machine.
    assert re.search(r"\| adapter\s+\| alpha-box\s+\| beta-box\s+\|", md)
    assert "❌ 9 passed, 1 failed" in md and "✅ 10 passed" in md
    # Benchmarks: each machine's own numbers in its own section, never in the other's.
    bench = section(md, "## Benchmarks", "## Machines")
    a, b = (section(bench, f"### `{m}`", "### `" if m == MACHINES[0] else None) for m in MACHINES)
    ma, mb = headline_median(tree / MACHINES[0]), headline_median(tree / MACHINES[1])
    assert ma != mb
    assert ma in a and ma not in b
    assert mb in b and mb not in a
    # Machine metadata per machine.
    machines = section(md, "## Machines", None)
    assert "AMD EPYC 7763" in section(machines, "### `alpha-box`", "### `beta-box`")
    assert "Intel Xeon Gold 6338" in section(machines, "### `beta-box`", None)
    for mid in MACHINES:
        assert f'id="bench-{mid}"' in html and f'id="machine-{mid}"' in html


def test_html_is_self_contained_with_the_plots_embedded(tree):
    build_report(tree)
    html = (tree / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)
    assert "<link rel=\"stylesheet\"" not in html and "@import" not in html
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    plots = [tree / m / "plots" / "lookups_cpu_forward_float32.png" for m in MACHINES]
    assert [base64.b64decode(u) for u in uris] == [p.read_bytes() for p in plots]


def test_one_corrupt_file_is_named_and_the_report_builds_from_the_rest(tree, capsys):
    broken = tree / "beta-box" / "conformance.json"
    broken.write_text('{"schema": "embedding-harness/conformance/1", "adapters": [{"id": "torch-ga')
    assert main(["--results", str(tree)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"skipped: {broken}: not valid JSON")
    md = (tree / "REPORT.md").read_text()
    assert str(broken) in md  # the report itself says what is missing
    html = (tree / "report.html").read_text()
    assert '<div class="warning" id="problems">' in html and str(broken) in html
    assert re.search(r"\| adapter\s+\| alpha-box\s+\|$", md, re.M)  # beta's conformance left out
    assert "### `beta-box`" in section(md, "## Benchmarks", "## Machines")  # beta's bench kept


def test_conformance_only_and_bench_only_machines(tmp_path):
    conf = write_machine(tmp_path, "conf-only")
    for name in ("bench.csv", "bench_meta.json", "BENCH.md"):
        (conf / name).unlink()
    (conf / "plots" / "lookups_cpu_forward_float32.png").unlink()
    bench = write_machine(tmp_path, "bench-only", speed=2.0)
    (bench / "conformance.json").unlink()
    result = build_report(tmp_path)
    assert result.exit_code == 0, result.data.problems
    md = (tmp_path / "REPORT.md").read_text()
    assert re.search(r"\| adapter\s+\| conf-only\s+\|$", md, re.M)
    bench_part = section(md, "## Benchmarks", "## Machines")
    assert "### `bench-only`" in bench_part and "conf-only" not in bench_part


def test_cuda_rows_and_adapters_get_their_own_tables(tmp_path):
    folder = write_machine(tmp_path, "gpu-box")
    data = json.loads((folder / "conformance.json").read_text())
    cuda = json.loads(json.dumps(data["adapters"][2]))  # torch-gather, as the registry names a GPU slot
    cuda.update(id="torch-gather-cuda", device="cuda")
    data["adapters"].append(cuda)
    (folder / "conformance.json").write_text(json.dumps(data))
    with open(folder / "bench.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows += [dict(r, device="cuda") for r in rows if r["adapter"] == "torch-gather"]
    with open(folder / "bench.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    build_report(tmp_path)
    md = (tmp_path / "REPORT.md").read_text()
    assert "#### cpu · forward · dim 64" in md and "#### cuda · forward · dim 64" in md
    assert md.index("#### cpu · forward · dim 64") < md.index("#### cuda · forward · dim 64")
    assert "| torch-gather-cuda " in md


def test_untrusted_text_is_escaped_in_html_and_markdown(tmp_path):
    folder = write_machine(tmp_path, "esc-box")
    data = json.loads((folder / "conformance.json").read_text())
    data["adapters"][0]["checks"][0].update(check="forward|<script>alert(1)</script>", status="failed",
                                            detail="line one\n| not a table row")
    (folder / "conformance.json").write_text(json.dumps(data))
    build_report(tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # only the report's own filter script
    md = (tmp_path / "REPORT.md").read_text()
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


def test_refuses_to_write_into_a_machine_folder(tree, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--results", str(tree / "alpha-box")])
    assert info.value.code == 2
    assert "is a machine folder" in capsys.readouterr().err
    assert not (tree / "alpha-box" / "REPORT.md").exists()


def test_cli_help_documents_options_and_exit_codes():
    out = subprocess.run([sys.executable, "-m", "harness.report", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    for needle in ("--results DIR", "--compare OLD", "--new NEW", "--force", "--floor", "exit codes:",
                   "3  done, but some results file"):
        assert needle in out.stdout


def test_cli_subprocess_builds_the_report(tree):
    out = subprocess.run([sys.executable, "-m", "harness.report", "--results", str(tree)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert (tree / "REPORT.md").exists() and (tree / "report.html").exists()
