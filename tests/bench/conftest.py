"""pytest-benchmark suite over every selected adapter (driven by ``python -m harness.bench run``).

Run directly it uses the ``smoke`` sizes (timed by pytest-benchmark unless
``--benchmark-disable``) and writes nothing: ``pytest tests/bench``.
``harness.bench run`` passes ``--bench-*`` options, the thread environment and
``--benchmark-json``; this conftest writes the part record to ``--bench-record``.
"""

from __future__ import annotations

import os

import pytest

from harness.bench.suite import BenchSession, CaseSkipped
from harness.bench.sweep import get_profile, parse_bytes
from harness.progress import Progress

_SESSION = pytest.StashKey[BenchSession]()
_PROGRESS = pytest.StashKey[Progress]()


def pytest_addoption(parser):
    group = parser.getgroup("embedding-harness bench")
    group.addoption("--bench-profile", default=os.environ.get("EMBEDDING_HARNESS_BENCH_PROFILE", "smoke"),
                    help="smoke | quick | full (default: smoke)")
    group.addoption("--bench-part", default="adhoc", help="label of this process's part")
    group.addoption("--bench-run-id", default="", help="id shared by the parts of one run")
    group.addoption("--bench-record", default=None, help="write the part record (JSON) here")
    group.addoption("--bench-threads", type=int, default=None, help="thread count (default: affinity)")
    group.addoption("--bench-onehot-budget", default=None,
                    help="memory budget for one-hot matrices, e.g. 2GiB (default: the profile's)")


def pytest_configure(config):
    try:
        profile = get_profile(config.getoption("--bench-profile"))
        raw_budget = config.getoption("--bench-onehot-budget")
        budget = parse_bytes(raw_budget) if raw_budget else profile.onehot_budget
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[_SESSION] = BenchSession(
        profile=profile, part=config.getoption("--bench-part"), run_id=config.getoption("--bench-run-id"),
        threads=config.getoption("--bench-threads"), onehot_budget=budget)


def _session(config) -> BenchSession:
    return config.stash[_SESSION]


def pytest_generate_tests(metafunc):
    session = _session(metafunc.config)
    if "bench_key" in metafunc.fixturenames:
        items = session.collect() if not session.items else list(session.items.values())
        # On a fatal error (unknown adapter) collection continues empty and
        # pytest_collection_modifyitems stops the session with the one-line message.
        metafunc.parametrize("bench_key", [i.key for i in items], ids=[i.key for i in items])
    if "self_check_repeat" in metafunc.fixturenames:
        if not session.items:
            session.collect()
        # NumPy's gather, repeated to show the run-to-run spread; each framework's CPU gather once.
        repeats = range(session.profile.self_check_repeats)
        pairs = [("numpy-gather", r) for r in repeats] + [(a, 0) for a in session.self_check_adapters()[1:]]
        metafunc.parametrize("self_check_repeat", pairs, ids=[f"{a}-repeat{r}" for a, r in pairs])


def pytest_deselected(items):
    for item in items:
        key = _key(item)
        if key is not None:
            _session(item.config).items.pop(key, None)


def pytest_collection_modifyitems(config, items):
    session = _session(config)
    if session.fatal:
        record = config.getoption("--bench-record")
        if record:
            session.write(record, exitstatus=4)
        pytest.exit(f"bench: {session.fatal}", returncode=4)
    ours = [i for i in items if _ours(i)]  # a run of all tests also collects other suites
    if ours:
        config.stash[_PROGRESS] = Progress(len(ours), f"bench {session.part}", heartbeat_s=30)


@pytest.fixture(scope="session")
def bench_session(request) -> BenchSession:
    return _session(request.config)


@pytest.fixture
def run_case(bench_session):
    """Runs one item; a CaseSkipped becomes a pytest skip with the same reason."""

    def run(benchmark, key):
        try:
            return bench_session.run_item(benchmark, key)
        except CaseSkipped as exc:
            pytest.skip(str(exc))

    return run


def _ours(item) -> bool:
    callspec = getattr(item, "callspec", None)
    return bool(callspec) and ("bench_key" in callspec.params or "self_check_repeat" in callspec.params)


def _advance(item, outcome: str) -> None:
    if _PROGRESS not in item.config.stash or not _ours(item):
        return
    key = _key(item)
    label = _session(item.config).items[key].adapter_id if key else "self-check"
    item.config.stash[_PROGRESS].advance(label=label, outcome=outcome)


def _key(item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("bench_key") if callspec else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _advance(item, report.outcome)
    key = _key(item)
    if key is None:
        return report
    session = _session(item.config)
    if report.skipped:
        reason = getattr(call.excinfo.value, "msg", None) if call.excinfo is not None else None
        session.record_outcome(key, "skipped", str(reason or "skipped"))
    elif report.failed:
        lines = call.excinfo.exconly().strip().splitlines() if call.excinfo else []
        session.record_outcome(key, "error", lines[0] if lines else "failed")
    elif report.when == "call":
        session.record_outcome(key, "ok", None)
    return report


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if _PROGRESS in config.stash:
        config.stash[_PROGRESS].close()
    record = config.getoption("--bench-record")
    bench = _session(config)
    if record and not bench.fatal:
        bench.write(record, exitstatus=int(exitstatus))
