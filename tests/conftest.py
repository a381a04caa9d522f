import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # real_results.py, for the report tests

from real_results import RealResults, build, check_coverage  # noqa: E402

# A tree built beforehand by ``python tests/real_results.py DIR`` (nox -s mutmut does: under
# mutmut no test may start the writers, and the report tests still need their output).
PREBUILT_ENV = "EMBEDDING_HARNESS_TEST_REAL_RESULTS"

pytest_plugins = ["harness.pytest_plugin"]


@pytest.fixture(scope="session")
def real_results(tmp_path_factory) -> RealResults:
    """A results tree the real conformance and bench writers produced (tests/real_results.py):
    two machines, built once per session for tests/unit and tests/browser alike. Read-only:
    a test that changes or adds files uses ``real_tree`` (a copy), and this fixture fails the
    session if one wrote here anyway."""
    prebuilt = os.environ.get(PREBUILT_ENV)
    if prebuilt:
        real = RealResults(Path(prebuilt))
        check_coverage(real)
    else:
        real = build(tmp_path_factory.getbasetemp() / "real-results")
    before = real.snapshot()
    yield real
    assert real.snapshot() == before, (f"a test changed the shared real results in {real.root}; "
                                       "tests that write must use the real_tree fixture (a copy)")


@pytest.fixture()
def real_tree(real_results, tmp_path) -> RealResults:
    """A writable copy of the real results tree, for tests that corrupt, remove or add files."""
    return real_results.copy(tmp_path / "results")


@pytest.fixture(autouse=True, scope="session")
def _no_child_processes_under_mutmut():
    """Under mutmut (nox -s mutmut) a test that starts a Python process is skipped when it does:
    the child would import the mutated harness without mutmut's bookkeeping, and mutmut picks
    the tests for a mutant from the calls it saw in-process anyway. Other programs (nvidia-smi,
    lscpu) run as usual. Session-wide, so session fixtures that run the real writers skip too."""
    if "MUTANT_UNDER_TEST" not in os.environ:
        yield
        return
    import subprocess

    real_popen = subprocess.Popen

    class PythonChildrenRefused(real_popen):
        def __init__(self, args, *rest, **kwargs):
            words = args.split() if isinstance(args, str) else [str(a) for a in args]
            program = words[0] if words else ""
            if program == sys.executable or Path(program).name.startswith("python"):
                pytest.skip("starts a Python process: not run under mutmut")
            super().__init__(args, *rest, **kwargs)  # nvidia-smi, lscpu, git: as usual

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, "Popen", PythonChildrenRefused)
        yield


def pytest_collection_modifyitems(config, items):
    """Under mutmut, fastest tests first (durations from its own stats): a mutant is killed by
    the first failing test, so the quick, focused tests should get there before the slow ones."""
    if "MUTANT_UNDER_TEST" not in os.environ:
        return
    stats = Path("mutmut-stats.json")  # mutmut runs the tests from its mutants/ folder
    if stats.exists():
        durations = json.loads(stats.read_text()).get("duration_by_test", {})
        items.sort(key=lambda item: durations.get(item.nodeid, 0.0))
