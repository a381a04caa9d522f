"""Every verdict the matrix can show, produced by a real run and read back from what users read.

One ``python -m harness.conformance run`` over tests/unit/verdict_adapters.py (pass, FAIL,
xfail, a strict xfail that passed, not applicable), a built-in adapter whose framework is
hidden (skipped) and one that segfaults (crash); then ``conformance.md`` and the cross-machine
``REPORT.md`` must say so for each cell."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.views import mdtext

ROOT = Path(__file__).parents[2]
HERE = Path(__file__).parent
MACHINE = "verdict-box"
CHECKS = "duplicates_accumulate or scalar_id or forward"
HIDE_JAX = (
    "import sys\n"
    "class _NoJax:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'jax' or name.startswith('jax.'):\n"
    "            raise ImportError('jax hidden by the test')\n"
    "sys.meta_path.insert(0, _NoJax())\n")


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    results = tmp_path_factory.mktemp("verdicts")
    hide = tmp_path_factory.mktemp("hide-jax")
    (hide / "sitecustomize.py").write_text(HIDE_JAX)
    env = {**os.environ, "EMBEDDING_HARNESS_RESULTS": str(results), "EMBEDDING_HARNESS_MACHINE_ID": MACHINE,
           "EMBEDDING_HARNESS_ADAPTERS": "verdict_adapters:make_verdicts,jax-gather,fault_adapters:segfault",
           "HYPOTHESIS_PROFILE": "ci", "PYTHONPATH": os.pathsep.join([str(hide), str(ROOT), str(HERE)])}
    env.pop("CI", None)
    run = subprocess.run([sys.executable, "-m", "harness.conformance", "run", "--", "-k", CHECKS], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=300)
    report = subprocess.run([sys.executable, "-m", "harness.report", "--results", str(results)], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    doc = json.loads((results / MACHINE / "conformance.json").read_text())
    cells = {(a["id"], c["check"]): c for a in doc["adapters"] for c in a["checks"]}
    return run, cells, (results / MACHINE / "conformance.md").read_text(), (results / "REPORT.md").read_text()


EXPECTED = [  # (adapter, check, status in conformance.json, mark in conformance.md, words in the detail)
    ("verdict-pass", "duplicates_accumulate", "passed", "pass", ""),
    ("verdict-fail", "duplicates_accumulate", "failed", "**FAIL**", "duplicate"),
    ("verdict-xfail", "duplicates_accumulate", "xfailed", "xfail", "declared deviation: buffered +="),
    ("verdict-xpass-strict", "duplicates_accumulate", "failed", "**FAIL**", "declared deviation did not occur"),
    ("verdict-not-applicable", "duplicates_accumulate", "not_applicable", "n/a", "a lookup-only table"),
    ("verdict-not-applicable", "forward[float16]", "not_applicable", "n/a", "float16 weights not declared"),
    ("jax-gather", "duplicates_accumulate", "skipped", "skip", "jax"),
    ("fault-segfault", "scalar_id", "failed", "**FAIL**", "killed by SIGSEGV"),
]


def test_the_run_fails_because_of_the_failures_and_records_every_cell(verdicts):
    run, cells, _, _ = verdicts
    assert run.returncode == 1, run.stderr[-3000:]
    for adapter, check, status, _, words in EXPECTED:
        cell = cells[(adapter, check)]
        assert cell["status"] == status, (adapter, check, cell)
        assert words in cell["detail"], (adapter, check, cell["detail"][:500])


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _matrix_mark(md: str, adapters: list[str], adapter: str, check: str) -> str:
    row = next(line for line in md.splitlines() if line.startswith(f"| {mdtext.escape(check)} |"))
    return _cells(row)[1:][adapters.index(adapter)]


def test_conformance_md_shows_each_verdict_in_its_matrix(verdicts):
    _, _, md, _ = verdicts
    header = next(line for line in md.splitlines() if line.startswith("| check |"))
    adapters = [c.strip().replace("\\", "") for c in header.strip("|").split("|")][1:]
    for adapter, check, _, mark, _ in EXPECTED:
        assert _matrix_mark(md, adapters, adapter, check) == mark, (adapter, check)
    assert "verdict-xpass-strict :: duplicates\\_accumulate FAILED" in md
    assert "- verdict-not-applicable :: duplicates\\_accumulate (not applicable): a lookup-only table" in md


def test_the_report_shows_each_verdict(verdicts):
    _, _, _, report = verdicts
    marks = {"passed": "✅ passed", "failed": "❌ failed", "xfailed": "⚠️ xfail", "skipped": "⏭️ skip",
             "not_applicable": "➖ n/a"}
    for adapter, check, status, _, _ in EXPECTED:
        rows = [_cells(line) for line in report.splitlines() if line.startswith("| ")]
        rows = [r for r in rows if r[:2] == [adapter, check]]
        if status == "passed":  # the report lists the checks that did not pass everywhere
            assert rows == []
            continue
        assert len(rows) == 1 and rows[0][2] == marks[status], (adapter, check, rows)
    assert "killed by SIGSEGV" in report


def test_documents_from_before_not_applicable_read_in_todays_vocabulary():
    """Older conformance.json files (the committed AMD run) recorded a check that does not apply
    as skipped; a skip on an adapter that ran can only be that, a whole adapter's skip stays one."""
    from harness import conformance
    from harness.report.load import load_conformance

    path = ROOT / "results" / "linux-x86_64-amd-epyc-2c-24g" / "conformance.json"
    raw = json.loads(path.read_text())
    legacy = {(a["id"], c["check"]): (c["status"], bool(a.get("skip_reason"))) for a in raw["adapters"]
              for c in a["checks"]}
    assert "not_applicable" not in {s for s, _ in legacy.values()}  # written before it existed
    want = {k: "not_applicable" if s == "skipped" and not whole else s for k, (s, whole) in legacy.items()}
    assert list(want.values()).count("not_applicable") == 28  # undeclared dtypes, gather sides, ...
    loaded = load_conformance(path)
    assert {(a["id"], c["check"]): c["status"] for a in loaded["adapters"] for c in a["checks"]} == want
    merged = conformance.merge_run(raw, {
        "run_id": "r", "profile": "ci", "machine": raw["machine"], "adapters": {}, "cells": {},
        "summary": {"selection": "nothing", "started": "", "wall_s": 1.0, "processes": 1, "complete": False}})
    assert {(a["id"], c["check"]): c["status"] for a in merged["adapters"] for c in a["checks"]} == want


def test_render_rewrites_conformance_md_in_todays_vocabulary_without_touching_the_record(tmp_path):
    from harness import conformance

    src = ROOT / "results" / "linux-x86_64-amd-epyc-2c-24g" / "conformance.json"
    (tmp_path / "conformance.json").write_bytes(src.read_bytes())
    assert conformance.main(["render", str(tmp_path)]) == 0
    md = (tmp_path / "conformance.md").read_text()
    assert (tmp_path / "conformance.json").read_bytes() == src.read_bytes()  # the record stays as measured
    assert r"numpy-onehot :: forward\[bfloat16\] (not applicable): bfloat16 weights not declared" in md
    assert "| n/a |" in md
    assert " (skipped): " not in md  # no adapter was skipped whole on that machine
    counts = next(line for line in md.splitlines() if line.startswith("| numpy-onehot | numpy |"))
    raw = json.loads(src.read_text())
    onehot = next(a for a in raw["adapters"] if a["id"] == "numpy-onehot")
    n_a = sum(c["status"] == "skipped" for c in onehot["checks"])
    assert [c.strip() for c in counts.strip("|").split("|")][9:11] == [str(n_a), "0"]  # n/a, skipped
