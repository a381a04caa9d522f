"""pytest integration: one test per (adapter, check), results recorded for the report.

Load with ``-p harness.pytest_plugin`` or ``pytest_plugins = ["harness.pytest_plugin"]``.
Any test that takes the ``conformance_case`` fixture is parametrised over the selected
adapters (EMBEDDING_HARNESS_ADAPTERS or ``--adapters``) and every check. A third-party
package can instead parametrise its own test with ``conformance_params``.

Outcomes: passed; failed (with the shrunk example and a repro snippet); xfailed for a
declared deviation that occurred (a declared one that did not occur fails); skipped with
the reason (framework missing, check not applicable). A plug-in that cannot be loaded fails
its checks with the error; it never stops the collection of the others.

Under ``python -m harness.conformance run`` each process also writes an event stream
(``--conformance-events``, see harness/events.py) so that its supervisor can see a death or
a hang, blame the check that was running, and restart the process for the rest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness import hypothesis_profiles
from harness.adapter import EmbeddingAdapter
from harness.checks import CHECKS, Check, CheckResult, run_check
from harness.errors import HarnessError
from harness.events import EventLog, finished_checks, read_events
from harness.progress import Progress
from harness.registry import Slot, describe_slot, select


@dataclass
class ConformanceCase:
    slot: Slot
    check: Check

    @property
    def adapter(self) -> EmbeddingAdapter | None:
        return self.slot.adapter

    def run(self) -> None:
        """Run the check and report its outcome the pytest way."""
        events = _STATE.get("events")
        if events:
            events.write("start", adapter=self.slot.id, check=self.check.name)
        if self.slot.load_error:
            result = CheckResult(self.check.name, "failed", f"the plug-in could not be loaded: {self.slot.load_error}")
        elif self.adapter is None:
            result = CheckResult(self.check.name, "skipped", self.slot.skip_reason or "adapter unavailable")
        else:
            result = run_check(self.adapter, self.check)
        _current_record()[(self.slot.id, self.check.name)] = result
        if events:
            events.write("result", adapter=self.slot.id, check=self.check.name, status=result.status,
                         detail=result.detail, examples=result.examples,
                         duration_s=round(result.duration_s, 4), observed=result.observed)
        if result.status in ("skipped", "not_applicable"):
            pytest.skip(result.detail)
        if result.status == "xfailed":  # the full observation is in the JSON results
            pytest.xfail(result.detail.splitlines()[0])
        if result.status == "failed":
            pytest.fail(result.detail, pytrace=False)


_STATE: dict = {}


def _current_record() -> dict:
    return _STATE.setdefault("results", {})


def conformance_params(adapters: list | None = None, checks: list[Check] | None = None) -> list:
    """``pytest.param`` objects, one per (adapter, check), with readable ids.

    ``adapters``: adapter objects or registry Slots (default: the selected adapters). A
    third-party suite writes::

        @pytest.mark.parametrize("case", conformance_params([MyEmbedding()]))
        def test_my_embedding(case):
            case.run()
    """
    slots = [a if isinstance(a, Slot) else Slot(a.id, a) for a in adapters] if adapters is not None \
        else select()
    return [pytest.param(ConformanceCase(slot, check), id=f"{slot.id}::{check.name}")
            for slot in slots for check in (checks or CHECKS)]


def pytest_addoption(parser):
    group = parser.getgroup("embedding-harness")
    group.addoption("--adapters", default=None,
                    help="comma-separated adapter ids, globs or module:factory (overrides "
                         "EMBEDDING_HARNESS_ADAPTERS)")
    group.addoption("--conformance-out", default=None,
                    help="write this run's conformance results (JSON) to this path")
    group.addoption("--conformance-part", default="default", help="label of this process's part")
    group.addoption("--conformance-events", default=None,
                    help="append check events (JSON lines) to this file; checks it already has "
                         "outcomes for are deselected (used by python -m harness.conformance run)")


def pytest_configure(config):
    try:
        if not config.getoption("hypothesis_profile", default=None):
            _STATE["profile"] = hypothesis_profiles.load_default()
        else:
            _STATE["profile"] = hypothesis_profiles.chosen(config.getoption("hypothesis_profile"))
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    _STATE["started"] = time.time()
    events = config.getoption("conformance_events", default=None)
    _STATE["events"] = EventLog(Path(events)) if events else None


def pytest_generate_tests(metafunc):
    if "conformance_case" not in metafunc.fixturenames:
        return
    raw = metafunc.config.getoption("adapters")
    specs = [s.strip() for s in raw.split(",") if s.strip()] if raw else None
    try:
        slots = select(specs)
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from None
    _STATE["slots"] = {s.id: s for s in slots}
    metafunc.parametrize("conformance_case", conformance_params(slots))


def pytest_report_header(config):
    slots = _STATE.get("slots")
    lines = [f"embedding-harness: hypothesis profile {_STATE.get('profile')}"]
    if slots:
        lines.append("adapters: " + ", ".join(s.id + ("" if s.adapter else " (skipped)") for s in slots.values()))
    return lines


def _case(item) -> ConformanceCase | None:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("conformance_case") if callspec else None
    return case if isinstance(case, ConformanceCase) else None


def pytest_collection_modifyitems(session, config, items):
    """Under a supervisor, skip the checks an earlier (crashed) process already finished."""
    events = _STATE.get("events")
    if not events:
        return
    done = finished_checks(read_events(events.path))
    if not done:
        return
    keep, drop = [], []
    for item in items:
        case = _case(item)
        (drop if case and (case.slot.id, case.check.name) in done else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session):
    cases = [c for c in (_case(item) for item in session.items) if c is not None]
    events = _STATE.get("events")
    if events:
        slots = {c.slot.id: c.slot for c in cases}
        events.write("collected", profile=_STATE.get("profile"),
                     adapters=[describe_slot(slot) for slot in slots.values()],
                     checks=[[c.slot.id, c.check.name] for c in cases])
    # The supervisor draws progress for all its processes; a bare pytest run draws its own.
    _STATE["progress"] = Progress(len(cases), "conformance") if cases and not events else None


def adapter_of_nodeid(nodeid: str) -> str:
    """``path::test[<adapter id>::<check>]`` -> the adapter id (check names hold brackets too)."""
    return nodeid.split("[", 1)[-1].split("::")[0]


def pytest_runtest_logreport(report):
    progress = _STATE.get("progress")
    if progress is None or "[" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and report.skipped):
        label = adapter_of_nodeid(report.nodeid)
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        progress.advance(label=label, outcome=outcome)


def pytest_sessionfinish(session, exitstatus):
    progress = _STATE.get("progress")
    if progress is not None:
        progress.close()
    out = session.config.getoption("conformance_out", default=None)
    slots = _STATE.get("slots")
    if not out or not slots:
        return
    from harness.conformance import adapter_entry, cell
    from harness.machine import metadata
    from harness.results import atomic_write_json

    results = _current_record()
    profile = _STATE.get("profile")
    entries = []
    for slot in slots.values():
        cells = {name: cell(result.__dict__, profile=profile) for (sid, name), result in results.items()
                 if sid == slot.id}
        entries.append(adapter_entry(describe_slot(slot), cells))
    part = {
        "schema": "embedding-harness/conformance-part/1",
        "part": session.config.getoption("conformance_part"),
        "hypothesis_profile": profile,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - _STATE.get("started", time.time()), 2),
        "machine": metadata(),
        "adapters": entries,
    }
    atomic_write_json(Path(out), part)
