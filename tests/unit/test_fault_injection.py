"""Runs that survive their adapters: every fault a real plug-in can commit, injected through
``python -m harness.conformance run`` (what ``nox -s conformance`` calls), and each time
the assertion that nothing else was lost. Adapters: tests/unit/fault_adapters.py."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import conformance
from harness.pytest_plugin import adapter_of_nodeid
from harness.supervisor import Unit, plan_units

ROOT = Path(__file__).parents[2]
HERE = Path(__file__).parent
MACHINE = "fault-box"
FAST = "scalar_id or empty_batch or duplicates"  # three quick checks; the faults fire in scalar_id


def _env(results: Path, adapters: str, **extra) -> dict:
    env = {**os.environ, "EMBEDDING_HARNESS_RESULTS": str(results), "EMBEDDING_HARNESS_MACHINE_ID": MACHINE,
           "EMBEDDING_HARNESS_ADAPTERS": adapters, "HYPOTHESIS_PROFILE": "ci",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE), extra.pop("PYTHONPATH", "")])}
    env.pop("CI", None)
    return {**env, **extra}


def _run(results: Path, adapters: str, *pytest_args: str, runner=(), timeout=240, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.conformance", "run", *runner, "--", *pytest_args],
                          cwd=ROOT, env=_env(results, adapters, **env), capture_output=True, text=True,
                          timeout=timeout)


def _doc(results: Path) -> dict:
    return json.loads((results / MACHINE / "conformance.json").read_text())


def _cells(doc: dict) -> dict[tuple[str, str], dict]:
    return {(a["id"], c["check"]): c for a in doc["adapters"] for c in a["checks"]}


def test_segfault_exit_and_hang_are_that_checks_failure_and_the_run_goes_on(tmp_path):
    got = _run(tmp_path, "numpy-gather,fault_adapters:segfault,fault_adapters:exit0,fault_adapters:hang",
               "-k", FAST, runner=("--timeout", "4"))
    assert got.returncode == 1, got.stderr[-3000:]
    cells = _cells(_doc(tmp_path))
    for check in ("scalar_id", "empty_batch", "duplicates_accumulate"):
        assert cells[("numpy-gather", check)]["status"] == "passed"  # the neighbour never noticed
        if check != "scalar_id":  # the rest of each faulty adapter ran in a fresh process
            for aid in ("fault-segfault", "fault-exit0", "fault-hang"):
                assert cells[(aid, check)]["status"] == "passed", (aid, check)
    segv = cells[("fault-segfault", "scalar_id")]
    assert segv["status"] == "failed" and "killed by SIGSEGV (signal 11) while running this check" in segv["detail"]
    assert "Fatal Python error: Segmentation fault" in segv["detail"] and "fault_adapters.py" in segv["detail"]
    # The snippet of the call it died in, pasted into a fresh interpreter, dies the same way.
    code = segv["detail"].split("--- reproduce (the adapter call it was in) ---\n", 1)[1]
    again = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(tmp_path, ""), capture_output=True,
                           timeout=120)
    assert again.returncode == -11, again.stderr[-2000:]
    quiet = cells[("fault-exit0", "scalar_id")]
    assert quiet["status"] == "failed" and "exited with status 0 while running this check" in quiet["detail"]
    hang = cells[("fault-hang", "scalar_id")]
    assert hang["status"] == "failed" and "timed out: still running after 4 s" in hang["detail"]
    assert "in forward" in hang["detail"]  # the stack of the hang names where it was stuck
    md = (tmp_path / MACHINE / "conformance.md").read_text()
    assert "fault-segfault :: scalar\\_id FAILED" in md and "SIGSEGV" in md
    assert "3 crashed or timed out" in got.stderr and "FAIL fault-exit0 :: scalar_id" in got.stderr
    # Progress in a log: one line per finished unit, naming it.
    assert all(f"conformance: {u} done:" in got.stderr
               for u in ("numpy-gather", "fault_adapters:segfault", "fault_adapters:exit0", "fault_adapters:hang"))


def test_a_factory_that_raises_is_that_plugins_failure(tmp_path):
    got = _run(tmp_path, "numpy-gather,fault_adapters:raises", "-k", "scalar_id")
    assert got.returncode == 1 and "Traceback" not in got.stderr
    cells = _cells(_doc(tmp_path))
    assert cells[("numpy-gather", "scalar_id")]["status"] == "passed"
    broken = cells[("fault_adapters:raises", "scalar_id")]
    assert broken["status"] == "failed" and "this plug-in's factory is broken" in broken["detail"]


@pytest.mark.parametrize(("adapters", "env", "runner", "message"), [
    ("nosuch-gather", {}, (), "unknown adapter 'nosuch-gather'"),
    ("no_such_module_xyz:make", {}, (), "adapter module 'no_such_module_xyz'"),
    ("examples.my_embedding:nope", {}, (), "module 'examples.my_embedding' has no factory 'nope'"),
    ("numpy-gather", {"HYPOTHESIS_PROFILE": "bogus"}, (), "Hypothesis profile 'bogus' is unknown"),
    ("numpy-gather", {"EMBEDDING_HARNESS_MACHINE_ID": ".."}, (), "start with a letter or digit"),
    ("numpy-gather", {"EMBEDDING_HARNESS_MACHINE_ID": "."}, (), "start with a letter or digit"),
    ("numpy-gather", {"EMBEDDING_HARNESS_MACHINE_ID": "a/b"}, (), "start with a letter or digit"),
    ("numpy-gather", {"EMBEDDING_HARNESS_MACHINE_ID": "m" * 300}, (), "use at most 64"),
    ("numpy-gather", {}, ("--timeout", "-1"), "must be positive"),
])
def test_configuration_errors_are_one_line_exit_2_and_write_nothing(tmp_path, adapters, env, runner, message):
    results = tmp_path / "results"
    got = _run(results, adapters, runner=runner, **env)
    assert got.returncode == 2, got.stderr
    assert got.stderr.strip().count("\n") == 0 and message in got.stderr and "Traceback" not in got.stderr
    assert list(tmp_path.iterdir()) == []  # not even the results folder: '..' would have been tmp_path


def test_a_selective_run_keeps_every_cell_it_did_not_measure(tmp_path):
    first = _run(tmp_path, "numpy-gather,examples.my_embedding:make_adapter", "-k", "scalar_id or empty_batch")
    assert first.returncode == 0, first.stderr
    before = _doc(tmp_path)
    second = _run(tmp_path, "numpy-gather", "-k", "scalar_id")
    assert second.returncode == 0, second.stderr
    assert "(3 cells from earlier runs kept)" in second.stderr
    after = _doc(tmp_path)
    cells, old = _cells(after), _cells(before)
    assert set(cells) == set(old)
    first_run, second_run = (r["run_id"] for r in after["runs"])
    assert cells[("numpy-gather", "scalar_id")]["run_id"] == second_run
    for key in [("numpy-gather", "empty_batch"), ("my-embedding", "scalar_id"), ("my-embedding", "empty_batch")]:
        assert cells[key] == old[key] and cells[key]["run_id"] == first_run
    assert after["runs"][1]["selection"].startswith("EMBEDDING_HARNESS_ADAPTERS=numpy-gather")


def test_a_run_waits_for_the_lock_and_merges_on_top_of_the_other_run(tmp_path):
    """Two runs finishing together: the second merge starts from what the first wrote."""
    folder = tmp_path / MACHINE
    folder.mkdir()
    log = tmp_path / "stderr.txt"
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # "another run" is merging
        with open(log, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "harness.conformance", "run", "--", "-k", "scalar_id"],
                                    cwd=ROOT, env=_env(tmp_path, "numpy-gather"), stderr=err,
                                    stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while "waiting for another run" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        # The other run's result lands while this one waits.
        other = {"run_id": "other", "profile": "ci", "machine": {"machine_id": MACHINE}, "selection": None,
                 "adapters": {"numpy-onehot": {"id": "numpy-onehot", "framework": "numpy", "variant": "onehot"}},
                 "cells": {"numpy-onehot": {"scalar_id": conformance.cell({"check": "scalar_id", "status": "passed"},
                                                                          profile="ci", run_id="other")}}}
        (folder / "conformance.json").write_text(json.dumps(conformance.merge_run(None, other)))
    assert proc.wait(timeout=120) == 0, log.read_text()
    cells = _cells(_doc(tmp_path))
    assert cells[("numpy-onehot", "scalar_id")]["run_id"] == "other"
    assert cells[("numpy-gather", "scalar_id")]["status"] == "passed"


def test_two_runs_at_once_lose_nothing(tmp_path):
    command = [sys.executable, "-m", "harness.conformance", "run", "--", "-k", "scalar_id or empty_batch"]
    procs = [subprocess.Popen(command, cwd=ROOT, env=_env(tmp_path, adapters), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
             for adapters in ("numpy-gather", "numpy-onehot")]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    doc = _doc(tmp_path)
    assert len(doc["runs"]) == 2 and len({r["run_id"] for r in doc["runs"]}) == 2
    assert {k for k in _cells(doc)} == {(a, c) for a in ("numpy-gather", "numpy-onehot")
                                         for c in ("scalar_id", "empty_batch")}


def test_a_unit_that_selects_nothing_is_not_a_failure(tmp_path):
    got = _run(tmp_path, "numpy-gather,examples.my_embedding:make_adapter", "-k", "numpy and scalar_id")
    assert got.returncode == 0, got.stderr
    assert "examples.my_embedding:make_adapter done: no check selected" in got.stderr
    nothing = _run(tmp_path / "none", "numpy-gather", "-k", "no_check_is_called_this")
    assert nothing.returncode == 5 and "matched no check" in nothing.stderr


def _fake_distribution(folder: Path, entry_points: dict[str, str]) -> Path:
    """An installed package declaring plug-ins, as pip would leave it (no install needed)."""
    dist = folder / "fakeplugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplugins\nVersion: 0.1\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[embedding_harness.adapters]\n{lines}")
    return folder


PLUGINS = {"good-plugin": "examples.my_embedding:make_adapter", "broken-plugin": "fault_adapters:raises",
           "missing-plugin": "no_such_module_xyz:make"}


def test_entry_point_plugins_run_and_broken_ones_are_their_own_failures(tmp_path):
    site = _fake_distribution(tmp_path / "site", PLUGINS)
    got = _run(tmp_path, "*-plugin", "-k", "scalar_id", PYTHONPATH=str(site))
    assert got.returncode == 1, got.stderr
    cells = _cells(_doc(tmp_path))
    assert cells[("my-embedding", "scalar_id")]["status"] == "passed"
    assert "factory is broken" in cells[("broken-plugin", "scalar_id")]["detail"]
    assert "no_such_module_xyz" in cells[("missing-plugin", "scalar_id")]["detail"]


def test_a_broken_plugin_does_not_break_bare_pytest_collection(tmp_path):
    site = _fake_distribution(tmp_path / "site", PLUGINS)
    out = tmp_path / "part.json"
    env = _env(tmp_path, "", PYTHONPATH=str(site))
    env.pop("EMBEDDING_HARNESS_ADAPTERS")
    got = subprocess.run([sys.executable, "-m", "pytest", "tests/conformance", "-q", "-p", "no:cacheprovider",
                          "--adapters=numpy-gather,broken-plugin", "-k", "scalar_id", f"--conformance-out={out}"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert got.returncode == 1, got.stdout[-2000:]  # a failure, not a collection error (2) or usage error (4)
    by_id = {a["id"]: a for a in json.loads(out.read_text())["adapters"]}
    assert by_id["numpy-gather"]["counts"]["passed"] == 1
    broken = by_id["broken-plugin"]
    assert broken["counts"]["failed"] == 1 and "factory is broken" in broken["load_error"]


def test_the_default_plan_includes_installed_plugins_and_keras_backends(monkeypatch):
    monkeypatch.setattr("harness.registry.entry_points", lambda: {"good-plugin": "x:y"})
    units = {spec: u for u in plan_units(None) for spec in u.specs}
    assert units["good-plugin"] == Unit("plugin-good-plugin", ["good-plugin"])
    assert units["keras-jax-gather"].env == {"KERAS_BACKEND": "jax"}
    assert units["torch-gather"].env == {}


def test_opt_in_adapters_run_only_when_named():
    from harness.registry import opt_in

    assert opt_in() and not set(opt_in()) & {spec for u in plan_units(None) for spec in u.specs}
    named = {spec: u for u in plan_units(["keras-torch-*-jit"]) for spec in u.specs}
    assert set(named) == set(opt_in()) and all(u.env == {"KERAS_BACKEND": "torch"} for u in named.values())


@pytest.mark.parametrize(("nodeid", "adapter"), [
    ("tests/conformance/test_conformance.py::test_conformance[numpy-gather::forward[float16]]", "numpy-gather"),
    ("t.py::test_conformance[keras-jax-onehot::low_precision_accumulation[bfloat16]]", "keras-jax-onehot"),
    ("t.py::test_conformance[torch-gather::scalar_id]", "torch-gather"),
])
def test_progress_labels_name_the_adapter_not_the_dtype(nodeid, adapter):
    assert adapter_of_nodeid(nodeid) == adapter


def test_ctrl_c_stops_within_seconds_and_records_only_whole_files(tmp_path):
    import signal

    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "harness.conformance", "run", "--", "-k", "scalar_id"],
                                cwd=ROOT, env=_env(tmp_path, "numpy-gather,fault_adapters:hang"), stderr=err,
                                stdout=subprocess.DEVNULL)
    folder = tmp_path / MACHINE

    def events(unit: str) -> str:
        return "".join(p.read_text() for p in folder.glob(f"tmp/*/events-{unit}*.jsonl"))

    deadline = time.monotonic() + 120
    # Interrupt once numpy-gather has finished and the hanging check is running.
    while not ('"result"' in events("numpy-gather") and '"start"' in events("fault_adapters_hang")):
        assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stopped = time.monotonic()
    assert proc.wait(timeout=30) == 130
    assert time.monotonic() - stopped < 5, "Ctrl-C must stop the run promptly"
    assert "interrupted" in log.read_text()
    assert not [p for p in folder.iterdir() if p.name.startswith(".conformance")]  # no half-written file
    doc = _doc(tmp_path)  # whole, readable, and honest about being incomplete
    assert doc["runs"][-1]["complete"] is False
    assert ("fault-hang", "scalar_id") not in _cells(doc)
    assert _cells(doc)[("numpy-gather", "scalar_id")]["status"] == "passed"  # what finished is kept


# --- probes that poison or kill their process (a device-side assert on a GPU) ---------------
def test_an_isolated_device_assert_is_observed_as_raise_and_poisons_nothing():
    from fault_adapters import _POISONED, DeviceAssert

    from harness.checks import run_check

    _POISONED["by"] = None
    adapter = DeviceAssert()
    results = {c: run_check(adapter, c) for c in ("out_of_range", "negative_index", "forward[float32]")}
    # out of range: every id raised, each in a child of its own (the first raise ends a child)
    assert results["out_of_range"].status == "passed", results["out_of_range"].detail
    observed = results["out_of_range"].observed
    assert observed["out_of_range"] == "raise" and observed["out_of_range_isolated"] is True
    assert "device-side assert triggered" in observed["out_of_range_detail"]
    # each id in a fresh child: none saw the poison an earlier id left in its process
    assert "earlier" not in observed["out_of_range_detail"]
    assert results["negative_index"].status == "passed", results["negative_index"].detail
    assert results["negative_index"].observed["negative_index"] == "raise"
    assert _POISONED["by"] is None  # this process never saw a bad id
    assert results["forward[float32]"].status == "passed", results["forward[float32]"].detail


def test_the_same_probe_in_process_poisons_every_later_check():
    """The control: without isolation the simulated assert does poison the process, so the
    test above shows isolation at work, not an adapter that never poisons."""
    from fault_adapters import _POISONED, DeviceAssertInProcess

    from harness.checks import run_check

    _POISONED["by"] = None
    adapter = DeviceAssertInProcess()
    try:
        assert run_check(adapter, "out_of_range").status == "passed"
        later = run_check(adapter, "forward[float32]")
        assert later.status == "failed" and "device-side assert" in later.detail
    finally:
        _POISONED["by"] = None


def test_a_probe_that_kills_its_child_is_a_crash_with_the_signal_and_the_parent_goes_on():
    from fault_adapters import AbortsOnBadIds

    from harness.checks import run_check

    adapter = AbortsOnBadIds()
    result = run_check(adapter, "out_of_range")
    assert result.status == "failed"
    assert result.observed["out_of_range"] == "crash"
    assert "SIGABRT" in result.detail and "declared 'raise', observed 'crash'" in result.detail
    # three ids, three children, each killed: the detail names each
    detail = result.observed["out_of_range_detail"]
    assert all(f"id {bad}: crash (the probe's child process was killed by SIGABRT" in detail
               for bad in (5, 6, 2**31 - 1)), detail
    assert run_check(adapter, "forward[float32]").status == "passed"


def test_an_adapter_without_a_source_cannot_be_isolated_and_says_how_to_fix_it():
    from fault_adapters import AbortsOnBadIds

    from harness.checks import run_check

    adapter = AbortsOnBadIds()
    adapter.source = ""
    result = run_check(adapter, "out_of_range")
    assert result.status == "failed" and "set adapter.source" in result.detail


def test_a_child_that_cannot_rebuild_the_adapter_fails_whatever_the_declaration():
    """Nothing was observed, so even a declaration of "undefined" cannot pass it."""
    from dataclasses import replace

    from fault_adapters import AbortsOnBadIds

    from harness.checks import run_check

    adapter = AbortsOnBadIds()
    adapter.source = "no_such_module_anywhere:make"
    adapter.declared = replace(adapter.declared, out_of_range="undefined")
    result = run_check(adapter, "out_of_range")
    assert result.status == "failed"
    assert "could not rebuild adapter 'fault-abort-on-bad-id' from 'no_such_module_anywhere:make'" in result.detail


def test_isolation_is_the_default_on_non_cpu_devices_only():
    from fault_adapters import AbortsOnBadIds

    from harness.isolation import needs_isolation

    adapter = AbortsOnBadIds()
    adapter.isolate_probes = None
    assert not needs_isolation(adapter)
    adapter.device = "cuda"
    assert needs_isolation(adapter)
    adapter.device = "cuda:1"
    assert needs_isolation(adapter)


def test_a_ctrl_c_between_reading_and_applying_events_loses_none(tmp_path, monkeypatch):
    import io

    from harness import events as events_module
    from harness.supervisor import Supervisor, UnitRun

    supervisor = Supervisor([Unit("u", ["u"])], tmp_path, jobs=1, timeout_s=60, pytest_args=[], profile="ci",
                            run_id="r", stream=io.StringIO())
    (run,) = supervisor.runs
    run.events_path.write_text(json.dumps({"event": "collected", "adapters": [], "checks": [["u", "c"]]}) + "\n")
    applied = []

    def interrupted_once(self, event, profile, run_id):
        if not applied:
            applied.append("interrupted")
            raise KeyboardInterrupt
        applied.append(event["event"])

    monkeypatch.setattr(UnitRun, "apply", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        supervisor._drain(run)
    supervisor._drain(run)  # what the interrupt handler does
    assert applied == ["interrupted", "collected"]

    # the reader itself: interrupted while decoding, the next read still returns the line
    reader = events_module.EventReader(run.events_path)
    loads = events_module.json.loads
    monkeypatch.setattr(events_module.json, "loads", lambda line: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        reader.read_new()
    monkeypatch.setattr(events_module.json, "loads", loads)
    assert [e["event"] for e in reader.read_new()] == ["collected"]


def test_builtins_share_processes_by_framework_and_plugins_never_do(monkeypatch):
    from harness.registry import default_builtins, framework_of, process_env
    from harness.supervisor import PACK_S, UNKNOWN_DURATION_S, _estimate

    monkeypatch.setattr("harness.registry.entry_points", lambda: {"good-plugin": "x:y"})
    durations = {aid: 3.0 for aid in default_builtins()} | {"torch-gather-compile": 200.0}
    units = plan_units(None, durations)
    planned = [spec for u in units for spec in u.specs]
    assert sorted(planned) == sorted([*default_builtins(), "good-plugin"])  # each exactly once
    assert len(units) < len(planned) / 2  # a few-second adapter does not pay for a process of its own
    for u in units:
        if "good-plugin" in u.specs or "torch-gather-compile" in u.specs:
            assert len(u.specs) == 1, u  # third-party code and a long adapter run alone
            continue
        assert len({framework_of(s).name for s in u.specs}) == 1 and all(process_env(s) == u.env for s in u.specs)
        assert _estimate(u.specs, durations) <= PACK_S
    # The longest first: what was never timed (the plug-in) may be the longest of all.
    assert [u.specs for u in units[:2]] == [["good-plugin"], ["torch-gather-compile"]]
    # With nothing recorded (a new machine), adapters are packed at their assumed duration.
    assert all(len(u.specs) <= PACK_S // UNKNOWN_DURATION_S for u in plan_units(None))


def _run_shared(tmp_path, monkeypatch, *specs):
    """One process shared by ``specs`` (the FAST checks), run by the supervisor: it and its record."""
    import io

    from harness.supervisor import Supervisor

    monkeypatch.setenv("PYTHONPATH", str(HERE))
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    supervisor = Supervisor([Unit("shared", list(specs))], tmp_path, jobs=1, timeout_s=120,
                            pytest_args=["-k", FAST], profile="ci", run_id="r", stream=io.StringIO())
    supervisor.run()
    return supervisor, supervisor.record({}, "", 1.0, None)


def test_a_crash_in_a_shared_process_blames_its_check_and_spares_the_neighbour(tmp_path, monkeypatch):
    supervisor, run = _run_shared(tmp_path, monkeypatch, "fault_adapters:segfault", "numpy-gather")
    statuses = {(aid, check): c["status"] for aid, cells in run["cells"].items() for check, c in cells.items()}
    assert statuses[("fault-segfault", "scalar_id")] == "failed"
    assert "SIGSEGV" in run["cells"]["fault-segfault"]["scalar_id"]["detail"]
    others = {k: v for k, v in statuses.items() if k != ("fault-segfault", "scalar_id")}
    assert len(others) == 5 and set(others.values()) == {"passed"}, statuses  # the rest, after a restart
    assert supervisor.processes == 2 and run["complete"]


def test_a_shared_process_that_dies_while_loading_runs_each_adapter_alone(tmp_path, monkeypatch):
    supervisor, run = _run_shared(tmp_path, monkeypatch, "fault_adapters:segfault_on_load", "numpy-gather")
    assert {c["status"] for c in run["cells"]["numpy-gather"].values()} == {"passed"}  # the neighbour, alone
    crashed = run["cells"]["fault_adapters:segfault_on_load"]
    assert {c["status"] for c in crashed.values()} == {"failed"}
    assert "SIGSEGV" in next(iter(crashed.values()))["detail"]
    assert supervisor.processes == 3 and "shared" not in run["cells"]


def test_unit_file_names_stay_apart_where_labels_differ_only_in_replaced_characters():
    from harness.supervisor import _safe

    assert _safe("numpy-gather") == "numpy-gather"
    assert len({_safe("m:f"), _safe("m_f"), _safe("m f")}) == 3
    assert len(_safe("x" * 200)) <= 80 and _safe("x" * 200) != _safe("x" * 199)


def test_packing_falls_back_to_other_machines_durations(tmp_path):
    from harness.supervisor import planning_durations

    def record(machine, seconds):
        folder = tmp_path / machine
        folder.mkdir()
        adapters = [{"id": aid, "checks": [{"check": "c", "duration_s": s}]} for aid, s in seconds.items()]
        (folder / "conformance.json").write_text(json.dumps({"adapters": adapters}))

    record("here", {"a": 1.0})
    record("m1", {"a": 50.0, "b": 10.0})
    record("m2", {"b": 30.0, "c": 5.0})
    record("m3", {"b": 40.0})
    assert planning_durations(tmp_path, "here") == {"a": 1.0, "b": 30.0, "c": 5.0}  # its own first, else the median
    assert planning_durations(tmp_path / "none", "here") == {}
