import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import conformance, machine, results
from harness.errors import CorruptResults, HarnessError
from harness.readme import replace_section

ROOT = Path(__file__).parents[2]


def _part(label, adapters):
    return {"part": label, "hypothesis_profile": "ci", "duration_s": 1.5, "created": "t",
            "machine": {"machine_id": "m1", "cpu_model": "cpu", "cpu_count": 2, "git": {"commit": "abc"}},
            "adapters": adapters}


def _adapter(aid, status="passed", skip_reason=None):
    return {"id": aid, "framework": aid.split("-")[0], "variant": aid.rsplit("-", 1)[1], "device": "cpu",
            "skip_reason": skip_reason, "observed": {"negative_index": "wrap"},
            "counts": {"generated": 1, "passed": int(status == "passed"), "failed": int(status == "failed"),
                       "xfailed": 0, "skipped": int(status == "skipped"), "examples": 3},
            "checks": [{"check": "forward[float32]", "status": status, "detail": "boom\nrepro", "examples": 3}]}


def test_merge_keeps_the_part_that_ran_a_keras_adapter():
    skipped = _adapter("keras-jax-gather", "skipped", skip_reason="needs KERAS_BACKEND=jax")
    ran = _adapter("keras-jax-gather", "failed")
    doc = conformance.merge_parts([_part("core", [skipped, _adapter("numpy-gather")]),
                                   _part("keras-jax", [ran])])
    by_id = {a["id"]: a for a in doc["adapters"]}
    assert by_id["keras-jax-gather"]["part"] == "keras-jax"
    assert by_id["keras-jax-gather"]["checks"][0]["status"] == "failed"
    assert doc["schema"] == conformance.SCHEMA and doc["duration_s"] == 3.0
    md = conformance.render_markdown(doc)
    assert "**FAIL**" in md and "keras-jax-gather :: forward[float32] FAILED" in md and "repro" in md


def test_merge_without_parts_is_a_clear_error(tmp_path):
    with pytest.raises(HarnessError, match="run nox -s conformance"):
        conformance.merge_dir(tmp_path)


def test_corrupt_part_is_named_and_merge_cli_exits_2(tmp_path):
    (tmp_path / "parts").mkdir()
    bad = tmp_path / "parts" / "conformance-core.json"
    bad.write_text('{"part": "core", "adapters": [')
    with pytest.raises(CorruptResults, match="conformance-core.json"):
        conformance.merge_dir(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "harness.conformance", "merge", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "conformance-core.json" in proc.stderr
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
    monkeypatch.setenv(machine.ID_ENV, "../escape")
    with pytest.raises(ValueError, match="letters, digits"):
        machine.machine_id()


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
