import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import conformance, machine, results
from harness.errors import HarnessError
from harness.views import conformance as conformance_view
from harness.views.readme import replace_section

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
                                               "not_applicable": 0, "skipped": 0, "examples": 6}
    assert again["hypothesis_profile"] == "mixed" and again["profiles"] == {"ci": 2, "dev": 1}
    assert [r["run_id"] for r in again["runs"]] == ["r1", "r2"] and again["runs"][1]["cells"] == 1
    assert again["wall_s"] == 1.5  # the README quotes the last complete, unselective run
    md = conformance_view.conformance_md(again)
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


H100 = {"name": "NVIDIA H100 80GB HBM3", "memory": "81559 MiB", "driver": "550.54.15"}


def _fake_host(monkeypatch, tmp_path, cpu: str, mem_kib: int | None, gpus: list[dict]) -> None:
    """A machine made of files: /proc/cpuinfo, /proc/meminfo and the sysfs cache sizes under
    tmp_path, 8 CPUs of which 3 are ours, Linux on x86_64, and ``gpus`` from nvidia-smi."""
    root = tmp_path / "host"
    (root / "proc").mkdir(parents=True)
    (root / "proc" / "cpuinfo").write_text(f"processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: {cpu}\n\n"
                                           f"processor\t: 1\nmodel name\t: something else\n")
    if mem_kib is not None:
        (root / "proc" / "meminfo").write_text(f"MemFree:         1024 kB\nMemTotal:       {mem_kib} kB\n")
    cache = root / "sys" / "devices" / "system" / "cpu" / "cpu0" / "cache"
    for index, (level, size) in enumerate([("1", "48K"), ("1", "32K"), ("2", "2048K"), ("3", "105M")]):
        (cache / f"index{index}").mkdir(parents=True)
        (cache / f"index{index}" / "level").write_text(level + "\n")
        (cache / f"index{index}" / "size").write_text(size + "\n")
    monkeypatch.setattr(machine, "Path", lambda p: root / str(p).lstrip("/"))
    monkeypatch.setattr(machine.platform, "system", lambda: "Linux")
    monkeypatch.setattr(machine.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(machine.platform, "platform", lambda: "Linux-6.1-x86_64-with-glibc2.36")
    monkeypatch.setattr(machine.platform, "python_version", lambda: "3.11.9")
    monkeypatch.setattr(machine.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(machine.os, "sched_getaffinity", lambda pid: {0, 1, 5})
    monkeypatch.setattr(machine, "gpus", lambda: gpus)
    monkeypatch.setattr(machine, "git_commit", lambda: {"commit": "abc123", "dirty": False})
    monkeypatch.delenv(machine.ID_ENV, raising=False)


def test_default_machine_id_names_the_hardware(monkeypatch, tmp_path):
    # 15.4 GiB of memory rounds to 15g; "(R)" and "CPU @ 2.00GHz" are dropped; "NVIDIA" too
    _fake_host(monkeypatch, tmp_path, "Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz", 16_148_070, [H100])
    assert machine.machine_id() == "linux-x86_64-intel-xeon-platinum-8480-8c-15g-h100-80gb-hbm3"


def test_a_long_machine_id_is_cut_at_64_characters_without_a_trailing_dash(monkeypatch, tmp_path):
    server = {"name": "NVIDIA RTX PRO 6000 Blackwell Server Edition"}
    _fake_host(monkeypatch, tmp_path, "AMD EPYC 9654 96-Core Processor", 9 * 1024 * 1024, [server, H100])
    # ...-9g-rtx-pro-6000-blackwell-server-edition: its 64th character is the "-" after blackwell
    assert machine.machine_id() == "linux-x86_64-amd-epyc-9654-96-core-8c-9g-rtx-pro-6000-blackwell"


def test_a_machine_id_without_memory_or_gpu(monkeypatch, tmp_path):
    _fake_host(monkeypatch, tmp_path, "AMD EPYC 9654 96-Core Processor", None, [])
    assert machine.machine_id() == "linux-x86_64-amd-epyc-9654-96-core-8c"


def test_metadata_reports_the_machine_it_runs_on(monkeypatch, tmp_path):
    _fake_host(monkeypatch, tmp_path, "Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz", 16 * 1024 * 1024, [H100])
    for name in machine.thread_env_names():  # the BLAS pools' and what registered frameworks set
        monkeypatch.delenv(name, raising=False)
    assert {"OMP_NUM_THREADS", "BLIS_NUM_THREADS", "KERAS_BACKEND", "XLA_FLAGS"} <= set(machine.thread_env_names())
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("BLIS_NUM_THREADS", "9")
    monkeypatch.setenv("EMBEDDING_HARNESS_UNRELATED", "x")  # not one the metadata records
    assert machine.metadata() == {
        "machine_id": "linux-x86_64-intel-xeon-platinum-8480-8c-16g-h100-80gb-hbm3",
        "cpu_model": "Intel(R) Xeon(R) Platinum 8480+ CPU @ 2.00GHz",
        "cpu_count": 8, "cpu_affinity": 3,
        "memory_bytes": 16 * 2**30,
        "l2_cache_bytes": 2 * 2**20,  # 2048K
        "l3_cache_bytes": 105 * 2**20,  # 105M
        "gpus": [H100],
        "os": "Linux-6.1-x86_64-with-glibc2.36", "python": "3.11.9",
        "git": {"commit": "abc123", "dirty": False},
        "thread_env": {"OMP_NUM_THREADS": "3", "BLIS_NUM_THREADS": "9", "KERAS_BACKEND": "jax"},
    }


def test_cache_sizes_in_plain_bytes_and_where_sysfs_has_none(monkeypatch, tmp_path):
    _fake_host(monkeypatch, tmp_path, "cpu", 1024, [])
    l2 = tmp_path / "host" / "sys" / "devices" / "system" / "cpu" / "cpu0" / "cache" / "index2" / "size"
    l2.write_text("1048576\n")
    assert machine._cache_bytes("L2") == 1_048_576 and machine._cache_bytes("L4") is None
    monkeypatch.setattr(machine, "Path", lambda p: tmp_path / "nothing" / str(p).lstrip("/"))
    assert machine._cache_bytes("L2") is None and machine._memory_bytes() is None


def test_readme_sections_are_replaced_between_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- x:start -->\nold\n<!-- x:end -->\noutro\n")
    replace_section(readme, "x", "new table")
    assert readme.read_text() == "intro\n<!-- x:start -->\nnew table\n<!-- x:end -->\noutro\n"
    with pytest.raises(HarnessError, match="markers"):
        replace_section(readme, "missing", "y")


def test_the_readme_section_gives_each_adapters_check_time_and_share():
    run = _run("r1", {"numpy-gather": {"scalar_id": "passed", "forward[float32]": "passed"},
                      "jax-gather": {"scalar_id": "passed"}})
    for aid, seconds in (("numpy-gather", (1.0, 2.0)), ("jax-gather", (9.0,))):
        for cell, s in zip(run["cells"][aid].values(), seconds, strict=True):
            cell["duration_s"] = s
    text = conformance_view.readme_section(conformance.merge_run(None, run), Path("results/m1"))
    assert "| check time |" in text
    assert text.splitlines()[-2:] == [
        "| numpy-gather | 2 | 0 | 0 | 0 | 0 | wrap | - | - | 3.0 s (25%) |",
        "| jax-gather | 1 | 0 | 0 | 0 | 0 | wrap | - | - | 9.0 s (75%) |"]


def test_the_readme_says_where_the_last_full_runs_time_went():
    def adapter(aid, framework, mode, run_id, *seconds):
        return {"id": aid, "framework": framework, "mode": mode,
                "checks": [{"check": f"c{i}", "duration_s": s, "run_id": run_id} for i, s in enumerate(seconds)]}

    doc = {"machine": {"cpu_count": 2},
           "runs": [{"run_id": "full", "complete": True, "selection": None, "wall_s": 60.0, "processes": 3},
                    {"run_id": "some", "complete": True, "selection": "EMBEDDING_HARNESS_ADAPTERS=x", "wall_s": 9.0,
                     "processes": 1}],
           "adapters": [adapter("t-gather", "t", "eager", "full", 10.0, 5.0),
                        adapter("t-gather-compile", "t", "compile", "full", 60.0),
                        adapter("n-gather", "n", "eager", "full", 25.0),
                        adapter("x-gather", "x", "eager", "some", 99.0)]}  # a selective run's cells do not count
    assert conformance_view.run_cost(doc) == (
        "The last run of every default adapter (`full`) took 60.0 s of wall time on 2 cores in 3 processes, "
        "100 s of checks: t 75 s (75%; compiled 60 s), n 25 s (25%; compiled 0 s).")
    assert conformance_view.run_cost({**doc, "runs": doc["runs"][1:]}) == ""  # no complete run of every adapter
