import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import conformance, machine, results
from harness.errors import HarnessError
from harness.readme import replace_section

ROOT = Path(__file__).parents[2]


MACHINE = {"machine_id": "m1", "cpu_model": "cpu", "cpu_count": 2, "git": {"commit": "abc"}}


def _run(run_id, cells, profile="ci", selection=None, complete=True):
    """A run record as the supervisor builds it: cells {adapter: {check: status}}."""
    adapters = {aid: {"id": aid, "framework": aid.split("-")[0], "variant": aid.rsplit("-", 1)[1],
                      "device": "cpu", "versions": {}, "declared": {}} for aid in cells}
    measured = {aid: {check: conformance.cell({"check": check, "status": status, "detail": f"{status}\nrepro",
                                               "examples": 3, "observed": {"negative_index": "wrap"}},
                                              profile=profile, run_id=run_id)
                      for check, status in checks.items()} for aid, checks in cells.items()}
    return {"run_id": run_id, "profile": profile, "machine": MACHINE, "adapters": adapters, "cells": measured,
            "selection": selection, "started": "t", "wall_s": 1.5, "processes": len(cells),
            "complete": complete, "problems": []}


def test_a_selective_run_replaces_only_the_cells_it_measured():
    full = conformance.merge_run(None, _run("r1", {"numpy-gather": {"forward[float32]": "passed",
                                                                     "scalar_id": "passed"},
                                                    "torch-gather": {"scalar_id": "passed"}}))
    again = conformance.merge_run(full, _run("r2", {"numpy-gather": {"scalar_id": "failed"}}, profile="dev",
                                             selection="pytest -k scalar_id"))
    by_id = {a["id"]: a for a in again["adapters"]}
    cells = {c["check"]: c for c in by_id["numpy-gather"]["checks"]}
    assert cells["scalar_id"]["status"] == "failed" and cells["scalar_id"]["run_id"] == "r2"
    assert cells["forward[float32]"]["status"] == "passed" and cells["forward[float32]"]["run_id"] == "r1"
    assert by_id["torch-gather"]["checks"][0]["run_id"] == "r1"  # not selected: kept as it was
    assert by_id["numpy-gather"]["counts"] == {"generated": 2, "passed": 1, "failed": 1, "xfailed": 0,
                                               "skipped": 0, "examples": 6}
    assert again["hypothesis_profile"] == "mixed" and again["profiles"] == {"ci": 2, "dev": 1}
    assert [r["run_id"] for r in again["runs"]] == ["r1", "r2"] and again["runs"][1]["cells"] == 1
    assert again["wall_s"] == 1.5  # the README quotes the last complete, unselective run
    md = conformance.render_markdown(again)
    assert "**FAIL**" in md and "numpy-gather :: scalar\\_id FAILED" in md and "repro" in md
    assert "selection pytest -k scalar\\_id" in md


def test_an_unreadable_record_is_set_aside_not_lost(tmp_path):
    (tmp_path / "conformance.json").write_text('{"adapters": [')
    conformance.record_run(tmp_path, _run("r1", {"numpy-gather": {"scalar_id": "passed"}}))
    kept = [p.name for p in tmp_path.iterdir() if p.name.startswith("conformance.json.unreadable-")]
    assert len(kept) == 1 and (tmp_path / kept[0]).read_text() == '{"adapters": ['
    assert json.loads((tmp_path / "conformance.json").read_text())["runs"][0]["run_id"] == "r1"


def test_corrupt_record_is_named_and_readme_cli_exits_2(tmp_path):
    (tmp_path / "conformance.json").write_text('{"adapters": [')
    proc = subprocess.run([sys.executable, "-m", "harness.conformance", "readme", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "conformance.json" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_atomic_write_leaves_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "conformance.json"
    results.atomic_write_json(target, {"old": True})

    def explode(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", explode)
    with pytest.raises(OSError):
        results.atomic_write_json(target, {"new": True})
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["conformance.json"]  # no temp file left


def test_machine_dirs_are_separate_and_ids_validated(tmp_path, monkeypatch):
    monkeypatch.setenv(machine.ID_ENV, "box-a")
    a = results.machine_dir(tmp_path)
    monkeypatch.setenv(machine.ID_ENV, "box-b")
    b = results.machine_dir(tmp_path)
    assert a != b and a.name == "box-a"
    for bad in ("../escape", "..", ".", "a/b", "x" * 65, "-dash-first"):
        monkeypatch.setenv(machine.ID_ENV, bad)
        with pytest.raises(HarnessError, match="letters, digits|at most 64"):
            machine.machine_id()
    monkeypatch.setenv(machine.ID_ENV, "x" * 64)
    assert machine.machine_id() == "x" * 64


def test_default_machine_id_names_the_hardware(monkeypatch):
    monkeypatch.delenv(machine.ID_ENV, raising=False)
    mid = machine.machine_id()
    assert f"{os.cpu_count()}c" in mid and "/" not in mid
    meta = machine.metadata()
    assert meta["machine_id"] == mid and meta["cpu_count"] == os.cpu_count()


def test_readme_sections_are_replaced_between_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- x:start -->\nold\n<!-- x:end -->\noutro\n")
    replace_section(readme, "x", "new table")
    assert readme.read_text() == "intro\n<!-- x:start -->\nnew table\n<!-- x:end -->\noutro\n"
    with pytest.raises(HarnessError, match="markers"):
        replace_section(readme, "missing", "y")
