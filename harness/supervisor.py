"""Run the conformance suite in isolated processes that may die, hang or misbehave.

Each pytest process is a *unit*, with the environment it needs (e.g. KERAS_BACKEND), up to
``--jobs`` at once. Every ``module:factory`` spec and every installed plug-in gets a unit of
its own; the built-in adapters of one framework share units of about ``PACK_S`` seconds of
checks (from the last recorded durations), since starting a process and importing its
framework costs seconds that a few-second adapter would otherwise pay again.

Each process streams its events (harness/events.py). When one dies (a segfault, ``os._exit``,
a killed process) the check it was running is recorded as failed with the signal or exit
status and the tail of its output, and the unit is started again for the checks it had not
reached. A check that runs past ``--timeout`` is killed and
recorded the same way. Nothing a unit finished before is lost, and the others never notice.

Why not pytest-xdist: a crashed xdist worker is reported without its exit status or signal,
and a hang inside native code cannot be interrupted from within the process; here the parent
owns each process, so it can read both and kill a hang. The parent never imports a framework.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from harness import hypothesis_profiles, machine
from harness.adapter import COMPILE_CACHE_ENV
from harness.checks import CHECKS, LAST_CALL_ENV
from harness.conformance import cell, record_run
from harness.errors import HarnessError, UnknownAdapter
from harness.events import EventLog, EventReader
from harness.isolation import GPU_SHARING_ENV, describe_exit
from harness.progress import Progress
from harness.registry import (
    ENV_VAR,
    Slot,
    default_builtins,
    describe_slot,
    framework_of,
    match_spec,
    opt_in,
    plugin_names,
    process_env,
    requested_specs,
)
from harness.results import machine_dir, machine_id, results_root

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "tests" / "conformance"
TIMEOUT_ENV = "EMBEDDING_HARNESS_CHECK_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0  # one check; the thorough profile's slowest property takes minutes
POLL_S = 0.2
LOG_TAIL_LINES = 25
STOP_EARLY_ARGS = ("-x", "--exitfirst", "--maxfail")
# A unit of built-in adapters holds about this many seconds of checks: long enough that its
# process start (pytest, the framework's import: 2-6 s here) is a small share, short enough
# that the units still spread over every core.
PACK_S = 40.0
UNKNOWN_DURATION_S = 10.0  # an adapter with no recorded duration (a new one) is packed as this


@dataclasses.dataclass
class Unit:
    """One process's worth of adapters: what it is called, what it loads, its environment."""

    label: str
    specs: list[str]
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def adapter_ids(self) -> list[str]:
        """The ids its results are recorded under when it dies before naming them itself."""
        return self.specs if len(self.specs) > 1 else [self.label]


# --- planning (no framework is imported) ------------------------------------------------
def _check_module(spec: str) -> None:
    """A ``module:factory`` the user typed must name a module that exists and, when its
    source can be read, a factory defined in it; found without importing anything."""
    module, _, attr = spec.partition(":")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise UnknownAdapter(f"adapter module {module!r} (from {spec!r}) is not importable: install it "
                             f"or add its folder to PYTHONPATH")
    if found.origin and found.origin.endswith(".py"):
        try:
            tree = ast.parse(Path(found.origin).read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            return  # the child reports it, as that plug-in's failure
        names = _top_level_names(tree)
        if attr and "*" not in names and attr not in names:
            raise UnknownAdapter(f"module {module!r} has no factory {attr!r} (from {spec!r})")


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.If, ast.Try)):  # names defined conditionally: do not judge
            return names | {"*"}
    return names


def plan_units(specs: list[str] | None, durations: dict[str, float] | None = None) -> list[Unit]:
    """The processes to start for a selection (None: every built-in and installed plug-in),
    longest first. ``durations``: each adapter's last recorded seconds of checks, for packing.

    Raises ``UnknownAdapter`` (one line) for a name that matches nothing."""
    if specs is None:
        builtins, plugins, factories = default_builtins(), plugin_names(), []
    else:
        builtins, plugins, factories = [], [], []
        for spec in specs:
            if ":" in spec:
                _check_module(spec)
                factories.append(spec)
                continue
            ids, names = match_spec(spec)
            builtins += [i for i in ids if i not in builtins]
            plugins += [n for n in names if n not in plugins]
    durations = durations or {}
    units = _pack_builtins(builtins, durations)
    units += [Unit(f"plugin-{name}", [name]) for name in plugins]
    units += [Unit(spec, [spec]) for spec in dict.fromkeys(factories)]
    # The slowest first, so that it does not start last; what was never timed (a plug-in, a new
    # adapter) may be the slowest of all.
    return sorted(units, key=lambda u: -_estimate(u.specs, durations, unknown=math.inf))


def _estimate(specs: list[str], durations: dict[str, float], unknown: float = UNKNOWN_DURATION_S) -> float:
    return sum(durations.get(s, unknown) for s in specs)


def _pack_builtins(adapter_ids: list[str], durations: dict[str, float]) -> list[Unit]:
    """Registered adapters (the built-ins, and those of frameworks registered by other packages)
    in units of about ``PACK_S`` seconds, each unit one framework and one environment: a crash
    still blames the check that was running and the unit restarts for the rest. Adapters of
    different frameworks, plug-ins and ``module:factory`` specs never share a process."""
    groups: dict[tuple, list[str]] = {}
    for aid in adapter_ids:
        framework = framework_of(aid)
        env = process_env(aid)
        groups.setdefault((framework.name if framework else aid, tuple(sorted(env.items()))), []).append(aid)
    units: list[Unit] = []
    for (_, env), members in groups.items():
        packed: list[list[str]] = []
        for aid in members:  # first fit, in the framework's order
            room = next((p for p in packed if _estimate([*p, aid], durations) <= PACK_S), None)
            if room is None:
                packed.append([aid])
            else:
                room.append(aid)
        units += [Unit(" ".join(specs), specs, dict(env)) for specs in packed]
    return units


def _safe(label: str) -> str:
    """A file-name part for a unit: readable, and unique where characters were replaced or a
    long label cut (``m:f`` and ``m_f`` must not share an events file)."""
    cut = re.sub(r"[^A-Za-z0-9._-]+", "_", label)
    return cut if cut == label and len(cut) <= 80 else f"{cut[:70]}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The part of a process's output that explains its end: Python's fault-handler dump
    (a crash, or the stack of a hang we aborted) from its top frame, else the last lines."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
    except OSError:
        return ""
    for i, line in enumerate(text):
        if line.startswith("Fatal Python error"):
            return "\n".join(text[i:i + lines])
    return "\n".join(text[-lines:])


# --- one unit's processes ---------------------------------------------------------------
class UnitRun:
    """A unit across its attempts: what it collected, finished, and how its processes ended."""

    def __init__(self, unit: Unit, scratch: Path, pytest_args: list[str]):
        self.unit = unit
        self.events_path = scratch / f"events-{_safe(unit.label)}.jsonl"
        self.last_call_path = scratch / f"last-call-{_safe(unit.label)}.py"
        self.scratch = scratch
        self.pytest_args = pytest_args
        self.attempts = 0
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self.reader = EventReader(self.events_path)
        self.backlog: list[dict] = []  # events read, not yet applied
        self.started_at = 0.0
        self.collected: list[tuple[str, str]] = []
        self.adapters: dict[str, dict] = {}
        self.results: dict[tuple[str, str], dict] = {}
        self.open: tuple[tuple[str, str], float] | None = None
        self.saw_collection = False
        self.problems: list[str] = []
        self.finished = False
        self.split = False  # died while loading its adapters: they run again, each in a unit of its own
        self.stopped_early = False
        self.startup_failure: str | None = None
        self.progress_this_attempt = 0
        self.open_since = 0.0

    # the process
    def start(self) -> None:
        self.attempts += 1
        self.log_path = self.scratch / f"log-{_safe(self.unit.label)}-{self.attempts}.txt"
        cmd = [sys.executable, "-m", "pytest", str(SUITE), "-q", "-p", "no:cacheprovider",
               f"--adapters={','.join(self.unit.specs)}", f"--conformance-events={self.events_path}",
               *self.pytest_args]
        cwd = os.getcwd()
        env = {**os.environ, **GPU_SHARING_ENV, **self.unit.env}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (cwd, str(REPO), env.get("PYTHONPATH", "")) if p)
        env.pop(ENV_VAR, None)  # the unit's --adapters is the selection
        env[LAST_CALL_ENV] = str(self.last_call_path)
        env[COMPILE_CACHE_ENV] = str(self.scratch / "compile-cache")
        with open(self.log_path, "wb") as log:
            # A session of its own: the whole process group can be killed, and a terminal's
            # Ctrl-C reaches the supervisor only, which then stops everything itself.
            self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.started_at = time.monotonic()
        self.open = None
        self.saw_collection = False
        self.progress_this_attempt = 0

    def kill(self, dump_stack: bool = False) -> None:
        """Kill the process group; with ``dump_stack`` first SIGABRT, so Python's fault handler
        (on in pytest) prints where a hung check was stuck."""
        if not self.proc or self.proc.poll() is not None:
            return
        if dump_stack:
            try:
                os.kill(self.proc.pid, signal.SIGABRT)
                self.proc.wait(timeout=2)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    # events
    def read_events(self) -> list[dict]:
        """Events appended since the last read."""
        return self.reader.read_new()

    def apply(self, event: dict, profile: str, run_id: str) -> tuple[str, str] | None:
        """Update the state; returns the (adapter, check) a result event finished."""
        kind = event.get("event")
        if kind == "collected":
            self.saw_collection = True
            for info in event.get("adapters", []):
                self.adapters[info["id"]] = info
            for aid, check in event.get("checks", []):
                if (aid, check) not in self.collected:
                    self.collected.append((aid, check))
        elif kind == "start":
            self.open = ((event["adapter"], event["check"]), time.monotonic())
            self.open_since = float(event.get("t", time.time()))
        elif kind == "result":
            pair = (event["adapter"], event["check"])
            self.results[pair] = cell(event, profile=profile, run_id=run_id)
            self.open = None
            self.progress_this_attempt += 1
            return pair
        return None

    def blame(self, pair: tuple[str, str], why: str, profile: str, run_id: str, in_check: bool = False) -> None:
        """Record a death or a hang as the failure of the check that was running (``in_check``:
        with the snippet of the adapter call it was in, when that call started in this check)."""
        log = _tail(self.log_path) if self.log_path else ""
        detail = f"{why}\n--- last lines of the process output ({self.log_path}) ---\n{log}" if log else why
        call = self._last_call() if in_check else None
        if call:
            detail += f"\n--- reproduce (the adapter call it was in) ---\n{call}"
        self.results[pair] = cell({"check": pair[1], "status": "failed", "detail": detail},
                                  profile=profile, run_id=run_id)
        # In the shared stream too: the restarted process must not run this check again.
        EventLog(self.events_path).write("result", adapter=pair[0], check=pair[1], status="failed",
                                         detail=detail, blamed_by="supervisor")
        self.reader.skip_to_end()
        self.problems.append(f"{pair[0]} :: {pair[1]}: {why}")
        self.progress_this_attempt += 1
        self.open = None

    def _last_call(self) -> str | None:
        try:
            if self.last_call_path.stat().st_mtime + 1e-3 < self.open_since:
                return None  # written by an earlier check: this one died outside an adapter call
            return self.last_call_path.read_text(encoding="utf-8")
        except OSError:
            return None

    def remaining(self) -> list[tuple[str, str]]:
        return [p for p in self.collected if p not in self.results]


# --- the supervisor -----------------------------------------------------------------------
class Supervisor:
    def __init__(self, units: list[Unit], scratch: Path, *, jobs: int, timeout_s: float,
                 pytest_args: list[str], profile: str, run_id: str, stream=sys.stderr):
        self.runs = [UnitRun(u, scratch, pytest_args) for u in units]
        self.scratch = scratch
        self.jobs = max(1, jobs)
        self.timeout_s = timeout_s
        self.profile = profile
        self.run_id = run_id
        self.stream = stream
        self.stop_early = any(a.split("=")[0] in STOP_EARLY_ARGS for a in pytest_args)
        self.progress = Progress(sum(len(u.specs) for u in units) * len(CHECKS), "conformance", stream=stream,
                                 heartbeat_s=30)
        self.processes = 0
        self.interrupted = False

    def _expected_total(self) -> int:
        return sum(len(r.collected) if r.saw_collection or r.finished else len(r.unit.specs) * len(CHECKS)
                   for r in self.runs if not r.split)

    def _label(self, running: list[UnitRun]) -> str:
        names = []
        for r in running:
            names.append(f"{r.open[0][0]}::{r.open[0][1]}" if r.open else f"{r.unit.label} (starting)")
        return ", ".join(names)

    def _after_exit(self, r: UnitRun, hang: str | None = None) -> bool:
        """Handle a process that ended; True when the unit should be started again."""
        rc = r.proc.returncode
        why = hang or f"the process {describe_exit(rc)}"
        died_in_check = r.open is not None
        if died_in_check:
            pair = r.open[0]
            r.blame(pair, f"{why} while running this check", self.profile, self.run_id, in_check=True)
            self.progress.advance(label=f"{pair[0]}::{pair[1]}", outcome="failed")
        if not r.saw_collection and not r.collected:
            if len(r.unit.specs) > 1 and not hang:
                r.split = True  # one adapter may have killed it while loading: each alone, so it alone fails
                return False
            r.problems.append(f"{r.unit.label}: {why} before it collected its checks")
            r.startup_failure = (f"{why} before it collected its checks\n--- last lines of the process "
                                 f"output ({r.log_path}) ---\n{_tail(r.log_path)}")
            return False
        remaining = r.remaining()
        if not remaining:
            return False
        if r.attempts > len(r.collected):  # a safety net: every attempt finishes at least one check
            for pair in remaining:
                r.blame(pair, f"not run: the unit was restarted {r.attempts} times", self.profile, self.run_id)
            return False
        if died_in_check:
            return True  # the check that killed it is recorded: the rest runs in a new process
        if rc == 1 and not hang:  # pytest stopped on its own (-x, --maxfail): the rest was not run
            r.stopped_early = True
            return False
        if r.progress_this_attempt:
            return True  # died between two checks after finishing some: try the rest again
        for pair in remaining:
            r.blame(pair, f"{why} before running this check", self.profile, self.run_id)
        return False

    def run(self) -> None:
        pending = list(self.runs)  # in the caller's order
        running: list[UnitRun] = []
        try:
            while pending or running:
                while pending and len(running) < self.jobs and not (self.stop_early and self._any_failure()):
                    r = pending.pop(0)
                    r.start()
                    self.processes += 1
                    running.append(r)
                if self.stop_early and self._any_failure() and not running:
                    break
                time.sleep(POLL_S)
                for r in list(running):
                    self._poll(r, running, pending)
                self.progress.total = max(self._expected_total(), self.progress.done)
                self.progress.tick(self._label(running))
        except KeyboardInterrupt:
            for r in running:
                r.kill()
                self._drain(r)  # checks that finished before the kill count
            self.stream.write("\nconformance: interrupted; recording the checks that finished\n")
            self.interrupted = True
        self.progress.close()

    def _any_failure(self) -> bool:
        return any(c["status"] == "failed" for r in self.runs for c in r.results.values())

    def _drain(self, r: UnitRun) -> None:
        """Apply the unit's new events; every finished check advances the progress. Events read
        wait in the unit's backlog until applied, so a Ctrl-C between reading and applying them
        loses none: the interrupt handler drains again."""
        r.backlog.extend(r.read_events())
        while r.backlog:
            pair = r.apply(r.backlog[0], self.profile, self.run_id)
            r.backlog.pop(0)
            if pair:
                self.progress.advance(label=f"{pair[0]}::{pair[1]}", outcome=r.results[pair]["status"])

    def _poll(self, r: UnitRun, running: list[UnitRun], pending: list[UnitRun]) -> None:
        self._drain(r)
        now = time.monotonic()
        hung = None
        if r.open and now - r.open[1] > self.timeout_s:
            hung = f"timed out: still running after {self.timeout_s:g} s (the limit; --timeout or {TIMEOUT_ENV})"
        elif not r.saw_collection and now - r.started_at > self.timeout_s:
            hung = f"the process was killed after waiting {self.timeout_s:g} s"
        if hung:
            r.kill(dump_stack=True)
        if r.proc.poll() is None:
            return
        self._drain(r)  # whatever it wrote before it ended still counts
        running.remove(r)
        if self._after_exit(r, hung):
            pending.insert(0, r)  # the rest of this unit, in a fresh process
        elif r.split:
            alone = [UnitRun(Unit(spec, [spec], r.unit.env), self.scratch, r.pytest_args) for spec in r.unit.specs]
            self.runs += alone
            pending[:0] = alone
            self.progress.note(f"conformance: {r.unit.label}: the process {describe_exit(r.proc.returncode)} "
                               f"while loading its adapters; each runs again in a process of its own")
        else:
            r.finished = True
            self.progress.note(self._unit_line(r))

    def _unit_line(self, r: UnitRun) -> str:
        counts: dict[str, int] = {}
        for c in r.results.values():
            counts[c["status"]] = counts.get(c["status"], 0) + 1
        text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no check selected"
        extra = f"; {len(r.problems)} crash/timeout" if r.problems else ""
        if r.stopped_early:
            extra += f"; stopped early, {len(r.remaining())} not run"
        return f"conformance: {r.unit.label} done: {text}{extra}"

    # the record
    def record(self, machine_meta: dict, started: str, wall_s: float, selection: str | None) -> dict:
        adapters: dict[str, dict] = {}
        cells: dict[str, dict] = {}
        problems: list[str] = []
        complete = not self.interrupted
        for r in self.runs:
            if r.split:
                continue  # its adapters ran in units of their own
            problems += r.problems
            if r.startup_failure:
                for aid in r.unit.adapter_ids:
                    adapters[aid] = describe_slot(Slot(aid, load_error=r.startup_failure))
                    cells[aid] = {c.name: cell({"check": c.name, "status": "failed", "detail": r.startup_failure},
                                               profile=self.profile, run_id=self.run_id) for c in CHECKS}
                continue
            adapters.update(r.adapters)
            for (aid, name), c in r.results.items():
                cells.setdefault(aid, {})[name] = c
            if r.remaining() or not r.finished:
                complete = False
        return {"run_id": self.run_id, "profile": self.profile, "machine": machine_meta, "adapters": adapters,
                "cells": cells, "selection": selection, "started": started, "wall_s": round(wall_s, 1),
                "processes": self.processes, "complete": complete, "problems": problems}


def planning_durations(root: Path, machine: str) -> dict[str, float]:
    """Each adapter's seconds of checks for packing units: this machine's record, else the
    median of the other machines' in ``root`` (a new machine or CI's id has none of its own,
    and an adapter's cost relative to the others' carries over)."""
    own = last_durations(root / machine)
    elsewhere: dict[str, list[float]] = {}
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name != machine) if root.is_dir() else []
    for folder in folders:
        for aid, seconds in last_durations(folder).items():
            elsewhere.setdefault(aid, []).append(seconds)
    return {**{aid: statistics.median(found) for aid, found in elsewhere.items()}, **own}


def last_durations(results_dir: Path) -> dict[str, float]:
    """Each adapter's seconds of checks in the machine's record (empty where there is none)."""
    from harness.errors import CorruptResults
    from harness.results import read_json
    from harness.schema import check_seconds

    durations: dict[str, float] = {}
    try:
        doc = read_json(results_dir / "conformance.json")
        for a in doc.get("adapters", []):
            durations[a["id"]] = check_seconds(a)
    except (CorruptResults, AttributeError, TypeError, KeyError):
        pass
    return durations


def _timeout(value: float | None) -> float:
    raw = value if value is not None else os.environ.get(TIMEOUT_ENV)
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(raw)
    except ValueError:
        raise HarnessError(f"{TIMEOUT_ENV}={raw!r}: give the seconds one check may run, e.g. 600") from None
    if seconds <= 0:
        raise HarnessError(f"check timeout {seconds:g} s: must be positive (--timeout or {TIMEOUT_ENV})")
    return seconds


def run_conformance(*, jobs: int | None = None, timeout: float | None = None,
                    pytest_args: list[str] | None = None, stream=sys.stderr) -> int:
    """The whole run: validate, run every unit, merge into the machine's results.

    Exit status: 0 every selected check ran and none failed; 1 a check failed, crashed,
    timed out or did not run; 2 a configuration error (raised as HarnessError); 5 the
    selection matched no check."""
    from datetime import datetime, timezone

    pytest_args = list(pytest_args or [])
    # Configuration first, each problem as one line: nothing runs and nothing is written.
    profile = hypothesis_profiles.chosen()
    timeout_s = _timeout(timeout)
    if jobs is not None and jobs < 1:
        raise HarnessError(f"--jobs {jobs}: must be at least 1")
    specs = requested_specs()
    units = plan_units(specs, planning_durations(results_root(), machine_id()))
    if not units:
        raise HarnessError("no adapter selected: check EMBEDDING_HARNESS_ADAPTERS")
    meta = machine.metadata()  # validates the machine id before anything is written
    out = machine_dir()
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    scratch = out / "tmp" / f"conformance-{run_id}"
    scratch.mkdir(parents=True)
    jobs = jobs or len(os.sched_getaffinity(0))
    selection_parts = []
    if specs is not None:
        selection_parts.append(f"{ENV_VAR}={','.join(specs)}")
    if pytest_args:
        selection_parts.append("pytest " + " ".join(pytest_args))
    selection = "; ".join(selection_parts) or None
    stream.write(f"conformance: run {run_id}, {len(units)} processes ({jobs} at a time), profile {profile}, "
                 f"timeout {timeout_s:g} s per check -> {out}\n")
    left_out = opt_in()
    if specs is None and left_out:
        stream.write(f"conformance: opt-in, not run without a selection: {', '.join(left_out)} "
                     f"(name them in {ENV_VAR})\n")
    started_iso = datetime.now(timezone.utc).isoformat(timespec="seconds")
    started = time.monotonic()
    supervisor = Supervisor(units, scratch, jobs=jobs, timeout_s=timeout_s, pytest_args=pytest_args,
                            profile=profile, run_id=run_id, stream=stream)
    supervisor.run()
    run = supervisor.record(meta, started_iso, time.monotonic() - started, selection)
    measured = sum(len(v) for v in run["cells"].values())
    if measured:
        doc = record_run(out, run, stream)
        kept = sum(a["counts"]["generated"] for a in doc["adapters"]) - measured
        stream.write(f"conformance: recorded {measured} cells of run {run_id} in {out}/conformance.json"
                     + (f" ({kept} cells from earlier runs kept)" if kept else "") + "\n")
    return _report(supervisor, run, scratch, stream)


def _report(supervisor: Supervisor, run: dict, scratch: Path, stream) -> int:
    statuses: dict[str, int] = {}
    failures = []
    for aid, cells in run["cells"].items():
        for name, c in cells.items():
            statuses[c["status"]] = statuses.get(c["status"], 0) + 1
            if c["status"] == "failed":
                failures.append(f"  FAIL {aid} :: {name}: {(c['detail'].strip().splitlines() or [''])[0][:160]}")
    not_run = sum(len(r.remaining()) for r in supervisor.runs)
    unstarted = [r.unit.label for r in supervisor.runs if not r.attempts]
    if unstarted:
        stream.write(f"conformance: not started after the first failure (-x/--maxfail): {', '.join(unstarted)}\n")
    for line in failures[:40]:
        stream.write(line + "\n")
    if len(failures) > 40:
        stream.write(f"  ... and {len(failures) - 40} more (see conformance.md)\n")
    counts = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
    stream.write(f"conformance: {sum(statuses.values())} checks ran ({counts or 'none'})"
                 + (f", {not_run} selected but not run" if not_run else "")
                 + (f"; {len(run['problems'])} crashed or timed out" if run["problems"] else "") + "\n")
    if failures or run["problems"] or not_run or supervisor.interrupted:
        stream.write(f"conformance: process logs kept in {scratch}\n")
    else:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
        try:
            scratch.parent.rmdir()
        except OSError:
            pass
    if supervisor.interrupted:
        return 130
    if not statuses and not not_run:
        stream.write("conformance: the selection matched no check (nothing was recorded)\n")
        return 5
    return 1 if failures or not_run or unstarted else 0
