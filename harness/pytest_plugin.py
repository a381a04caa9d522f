"""pytest integration: one test per (adapter, check), results recorded for the report.

Load with ``-p harness.pytest_plugin`` or ``pytest_plugins = ["harness.pytest_plugin"]``.
Any test that takes the ``conformance_case`` fixture is parametrised over the selected
adapters (EMBEDDING_HARNESS_ADAPTERS or ``--adapters``) and every check. A third-party
package can instead parametrise its own test with ``conformance_params``.

Outcomes: passed; failed (with the shrunk example and a repro snippet); xfailed for a
declared deviation that occurred (a declared one that did not occur fails); skipped with
the reason (framework missing, check not applicable).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from harness import hypothesis_profiles
from harness.adapter import EmbeddingAdapter
from harness.checks import CHECKS, Check, run_check
from harness.errors import HarnessError
from harness.progress import Progress
from harness.registry import Slot, select


@dataclass
class ConformanceCase:
    slot: Slot
    check: Check

    @property
    def adapter(self) -> EmbeddingAdapter | None:
        return self.slot.adapter

    def run(self) -> None:
        """Run the check and report its outcome the pytest way."""
        if self.adapter is None:
            pytest.skip(self.slot.skip_reason or "adapter unavailable")
        result = run_check(self.adapter, self.check)
        _current_record()[(self.slot.id, self.check.name)] = result
        if result.status == "skipped":
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


def pytest_configure(config):
    if not config.getoption("hypothesis_profile", default=None):
        _STATE["profile"] = hypothesis_profiles.load_default()
    else:
        _STATE["profile"] = config.getoption("hypothesis_profile")
    _STATE["started"] = time.time()


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


def pytest_collection_finish(session):
    n = sum(1 for item in session.items if "conformance_case" in getattr(item, "fixturenames", ()))
    _STATE["progress"] = Progress(n, "conformance") if n else None


def pytest_runtest_logreport(report):
    progress = _STATE.get("progress")
    if progress is None or "::" not in report.nodeid or "conformance" not in report.nodeid:
        return
    if report.when == "call" or (report.when == "setup" and report.skipped):
        label = report.nodeid.rsplit("[", 1)[-1].split("::")[0]
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        progress.advance(label=label, outcome=outcome)


def _adapter_entry(slot: Slot, results: dict) -> dict:
    checks, observed = [], {}
    counts = dict.fromkeys(("generated", "passed", "failed", "xfailed", "skipped", "examples"), 0)
    for check in CHECKS:
        result = results.get((slot.id, check.name))
        if result is None:
            status, detail, examples, duration = "skipped", slot.skip_reason or "not run (deselected)", 0, 0.0
        else:
            status, detail, examples, duration = result.status, result.detail, result.examples, result.duration_s
            observed.update({k: v for k, v in result.observed.items()})
        counts["generated"] += 1
        counts[status] += 1
        counts["examples"] += examples
        checks.append({"check": check.name, "status": status, "detail": detail,
                       "examples": examples, "duration_s": round(duration, 4)})
    if slot.adapter is not None:
        entry = slot.adapter.describe()
    else:
        device = "cuda" if slot.id.endswith("-cuda") else "cpu"
        framework, _, variant = slot.id.removesuffix("-cuda").rpartition("-")
        entry = {"id": slot.id, "framework": framework.split("-")[0], "variant": variant,
                 "device": device, "versions": {}, "declared": {}}
    entry.update({"observed": observed, "skip_reason": slot.skip_reason, "counts": counts, "checks": checks})
    return entry


def pytest_sessionfinish(session, exitstatus):
    progress = _STATE.get("progress")
    if progress is not None:
        progress.close()
    out = session.config.getoption("conformance_out", default=None)
    slots = _STATE.get("slots")
    if not out or not slots:
        return
    from harness.machine import metadata
    from harness.results import atomic_write_json

    results = _current_record()
    part = {
        "schema": "embedding-harness/conformance-part/1",
        "part": session.config.getoption("conformance_part"),
        "hypothesis_profile": _STATE.get("profile"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - _STATE.get("started", time.time()), 2),
        "machine": metadata(),
        "adapters": [_adapter_entry(slot, results) for slot in slots.values()],
    }
    atomic_write_json(Path(out), part)
