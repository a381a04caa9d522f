"""Adding a framework touches its backend module and its package's pyproject.toml (the entry
point and an extra): done here once, for a made-up framework "acme", installed the way pip
leaves a package (a dist-info folder on the path). Nothing in harness/, noxfile.py, the CI
workflow or the tests names it, yet it is listed, planned into processes of its own with its
environment, run by the conformance runner, given its runtime hooks, and put in the CI matrix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[2]

BACKEND = textwrap.dedent('''
    """acme: a table lookup library (here NumPy underneath)."""
    import os

    from examples.my_embedding import MyEmbedding
    from harness.errors import FrameworkUnavailable
    from harness.framework import Framework, Runtime


    class AcmeLookup(MyEmbedding):  # the lookup itself is the README's example adapter
        id, framework = "acme-gather", "acme"

        def __init__(self, device):
            if os.environ.get("ACME_MODE") != "exact":  # the process environment it registered
                raise FrameworkUnavailable("acme needs ACME_MODE=exact")
            self.device = device

        def versions(self): return {"acme": "1.0"}


    class AcmeRuntime(Runtime):
        name = "acme"

        def process_env(self, threads, base):
            return {"ACME_NUM_THREADS": str(threads)}

        def set_threads(self, threads):
            return {"threads": threads}


    FRAMEWORK = Framework(name="acme", adapters={"acme-gather": AcmeLookup}, env={"ACME_MODE": "exact"},
                          runtime=AcmeRuntime())
    NOT_A_FRAMEWORK = object()
''')


def _install(site: Path, entry_points: dict[str, str]) -> Path:
    """The backend module, and the metadata pip writes from its pyproject.toml's entry points."""
    site.mkdir(parents=True)
    (site / "acme_backend.py").write_text(BACKEND)
    dist = site / "acme_embedding-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-embedding\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[embedding_harness.frameworks]\n{lines}")
    return site


def _env(site: Path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "EMBEDDING_HARNESS_ADAPTERS")}
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]), "HYPOTHESIS_PROFILE": "ci", **extra}


PROBE = textwrap.dedent('''
    import json
    from harness import registry, supervisor
    from harness.bench import parts, run, suite

    (slot,) = registry.select(["acme-*"], devices=["cpu", "cuda"])
    units = {spec: u.env for u in supervisor.plan_units(None) for spec in u.specs}
    print(json.dumps({
        "listed": list(registry.known_adapters())[-1],
        "matrix": registry.ci_matrix()[-1],
        "bench_part": dict(parts.plan(None))["acme"],
        "conformance_unit": units["acme-gather"],
        "thread_env": run.thread_env(3, {})["ACME_NUM_THREADS"],
        "skip": slot.skip_reason,
        "threads_report": suite.apply_thread_settings(2, [registry.framework_of("acme-gather").runtime])["acme"],
    }))
''')


def test_a_framework_registered_by_its_package_is_listed_planned_and_given_its_hooks(tmp_path):
    site = _install(tmp_path / "site", {"acme": "acme_backend:FRAMEWORK"})
    got = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=_env(site), capture_output=True, text=True,
                         timeout=120)
    assert got.returncode == 0, got.stderr[-3000:]
    seen = json.loads(got.stdout)
    assert seen["listed"] == "acme-gather"
    assert seen["matrix"] == {"framework": "acme", "adapters": "acme-gather"}
    assert seen["bench_part"] == {"EMBEDDING_HARNESS_ADAPTERS": "acme-gather", "ACME_MODE": "exact"}
    assert seen["conformance_unit"] == {"ACME_MODE": "exact"}
    assert seen["thread_env"] == "3"
    # this process lacks ACME_MODE: the adapter says so, as a skip (the runner sets it, below)
    assert seen["skip"] == "acme needs ACME_MODE=exact"
    assert seen["threads_report"] == {"threads": 2}


def test_the_conformance_runner_runs_it_in_a_process_with_its_environment(tmp_path):
    site = _install(tmp_path / "site", {"acme": "acme_backend:FRAMEWORK"})
    results = tmp_path / "results"
    got = subprocess.run([sys.executable, "-m", "harness.conformance", "run", "--", "-k", "scalar_id or duplicates"],
                         cwd=ROOT, env=_env(site, EMBEDDING_HARNESS_ADAPTERS="acme-gather",
                                            EMBEDDING_HARNESS_RESULTS=str(results),
                                            EMBEDDING_HARNESS_MACHINE_ID="acme-box"),
                         capture_output=True, text=True, timeout=240)
    assert got.returncode == 0, got.stderr[-3000:]
    (adapter,) = json.loads((results / "acme-box" / "conformance.json").read_text())["adapters"]
    assert adapter["id"] == "acme-gather" and adapter["skip_reason"] is None
    assert {c["check"]: c["status"] for c in adapter["checks"]} == {
        "scalar_id": "passed", "duplicates_accumulate": "passed"}


def test_a_broken_registration_is_reported_and_the_others_still_run(tmp_path):
    site = _install(tmp_path / "site", {"acme": "acme_backend:NOT_A_FRAMEWORK", "acme2": "no_such_module:FRAMEWORK"})
    listed = subprocess.run([sys.executable, "-m", "harness", "frameworks"], cwd=ROOT, env=_env(site),
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 1
    assert "acme  BROKEN: framework 'acme' (acme_backend:NOT_A_FRAMEWORK) could not be loaded: TypeError: " \
           "acme_backend:NOT_A_FRAMEWORK is a object, not a harness.framework.Framework" in listed.stdout
    assert "acme2  BROKEN: framework 'acme2' (no_such_module:FRAMEWORK) could not be loaded: " \
           "ModuleNotFoundError" in listed.stdout
    assert "numpy-gather" in listed.stdout  # the built-ins are listed all the same
    probe = ("from harness import registry\n"
             "slots = {s.id: s for s in registry.select(['acme*', 'numpy-gather'], devices=['cpu'])}\n"
             "print(sorted(slots), slots['acme'].load_error.splitlines()[0])")
    got = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=_env(site), capture_output=True, text=True,
                         timeout=120)
    assert got.returncode == 0, got.stderr[-3000:]
    assert got.stdout.startswith("['acme', 'acme2', 'numpy-gather'] framework 'acme' (acme_backend:NOT_A_FRAMEWORK)")
