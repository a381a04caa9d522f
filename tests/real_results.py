"""A small real results tree, written by the real writers, for the report's own tests.

``build(root)`` runs what a user runs, in subprocesses, into ``root`` (``EMBEDDING_HARNESS_RESULTS``)
for two machine ids, so every report test reads what the conformance merge and the bench
finalize produce today: a change to either that the report does not follow breaks a test.

``real-a``
    conformance (Hypothesis profile ``ci``) of ``numpy-gather``, ``numpy-onehot`` and three
    deliberately broken plug-ins (``broken_adapters:make_sample``): passed, failed (with repro
    details), xfailed (declared deviations) and not-applicable cells (undeclared dtypes; and
    ``numpy-onehot`` declares ``low_precision_accumulation[bfloat16]`` not applicable), and a
    declared-vs-observed mismatch; the tiny bench profile of ``numpy-*``: ok rows, skipped rows
    (the one-hot guards), a crossover, plots, in ``profile-tiny/``.
``real-b``
    conformance of the two NumPy adapters, ``examples.my_embedding`` and a plug-in whose
    framework is not installed (a whole-adapter skip); the tiny bench profile of
    ``fault_adapters:large_tables`` (a plug-in that raises past 1000 rows): ok and error rows,
    and a part listed as FAILED.

So the cross-machine views have two columns, each with adapters the other lacks. Nothing is
redirected but the results root: the bench writes where a user's non-full run does
(``<machine-id>/profile-tiny/``), the conformance run its ``conformance.json``/``.md`` and, as it
had failures, its logs in ``<machine-id>/tmp/``. The tests get it through the session fixtures of
``tests/conftest.py``: built once per pytest session (about 40 s on 2 idle cores), read-only; a
test that changes files works on a copy (``copy``, the ``real_tree`` fixture).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MACHINES = ("real-a", "real-b")
PROFILE = "tiny"
BENCH_SUBDIR = f"profile-{PROFILE}"  # where the bench writes a non-full profile
HYPOTHESIS_PROFILE = "ci"  # derandomised, 12 examples per property: the fastest honest profile

# A plug-in that needs a framework this machine does not have: the registry records it as a
# whole-adapter skip with the reason, as it would for a user without, say, JAX.
ABSENT_PLUGIN = "needs_absent_framework"
ABSENT_SPEC = f"{ABSENT_PLUGIN}:make_adapter"
ABSENT_SOURCE = '''"""A plug-in for a framework that is not installed."""
import embedding_harness_absent_framework  # noqa: F401


def make_adapter():
    raise AssertionError("never reached: the import above fails")
'''

# numpy-onehot declares this check not applicable (backends/numpy_backend.py), with this reason.
NOT_APPLICABLE_CHECK = "low_precision_accumulation[bfloat16]"
NOT_APPLICABLE_REASON = "no bfloat16 matmul in NumPy"

# (what, machine, command after python -m, adapters, exit status the writer must return). The
# two conformance runs go together (one process each at a time: the cores are shared), the timed
# bench runs one after the other on an otherwise idle machine.
CONFORMANCE_RUNS = (
    ("conformance", "real-a", ["harness.conformance", "run", "--jobs", "1"],
     "numpy-gather,numpy-onehot,broken_adapters:make_sample", 1),  # 1: the broken plug-ins fail
    ("conformance", "real-b", ["harness.conformance", "run", "--jobs", "1"],
     f"numpy-gather,numpy-onehot,examples.my_embedding:make_adapter,{ABSENT_SPEC}", 0),
)
BENCH_RUNS = (
    ("bench", "real-a", ["harness.bench", "all", "--profile", PROFILE], "numpy-*", 0),
    # 1: the plug-in raises on tables past 1000 rows, so its part is listed as FAILED
    ("bench", "real-b", ["harness.bench", "all", "--profile", PROFILE], "fault_adapters:large_tables", 1),
)


class RealRunFailed(RuntimeError):
    """A writer did not do what the fixture needs; the message has its output."""


@dataclass(frozen=True)
class RealResults:
    """A results root with one folder per machine id, as the writers left it."""

    root: Path
    machines: tuple[str, ...] = MACHINES
    timings: dict = field(default_factory=dict, compare=False)

    def machine(self, mid: str) -> Path:
        return self.root / mid

    def bench_dir(self, mid: str) -> Path:
        return self.root / mid / BENCH_SUBDIR

    def conformance_path(self, mid: str) -> Path:
        return self.root / mid / "conformance.json"

    def bench_csv(self, mid: str) -> Path:
        return self.bench_dir(mid) / "bench.csv"

    def bench_meta_path(self, mid: str) -> Path:
        return self.bench_dir(mid) / "bench_meta.json"

    def conformance(self, mid: str) -> dict:
        return json.loads(self.conformance_path(mid).read_text(encoding="utf-8"))

    def bench_meta(self, mid: str) -> dict:
        return json.loads(self.bench_meta_path(mid).read_text(encoding="utf-8"))

    def bench_rows(self, mid: str) -> list[dict[str, str]]:
        """bench.csv as the file has it: strings, read with the csv module, not the report's loader."""
        with open(self.bench_csv(mid), newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def bench_header(self, mid: str) -> list[str]:
        with open(self.bench_csv(mid), newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle))

    def plots(self, mid: str) -> list[Path]:
        return sorted((self.bench_dir(mid) / "plots").glob("*.png"))

    def cells(self, mid: str) -> dict[tuple[str, str], dict]:
        """(adapter id, check) -> the stored cell, from conformance.json."""
        return {(a["id"], c["check"]): c for a in self.conformance(mid)["adapters"] for c in a["checks"]}

    def copy(self, dest: Path) -> RealResults:
        """A writable copy of the whole tree at ``dest`` (which must not exist)."""
        shutil.copytree(self.root, dest)
        for path in [dest, *dest.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        return RealResults(Path(dest), self.machines, self.timings)

    def snapshot(self) -> dict[str, str]:
        """Every file's content hash: to prove nobody wrote into the shared tree."""
        return {str(p.relative_to(self.root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.root.rglob("*")) if p.is_file()}


def _env(root: Path, mid: str, adapters: str, support: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMBEDDING_HARNESS_", "HYPOTHESIS_"))}
    env.update({
        "EMBEDDING_HARNESS_RESULTS": str(root),
        "EMBEDDING_HARNESS_MACHINE_ID": mid,
        "EMBEDDING_HARNESS_ADAPTERS": adapters,
        "EMBEDDING_HARNESS_DEVICES": "cpu",  # the same tree on a GPU machine
        "EMBEDDING_HARNESS_CHECK_TIMEOUT": "300",
        "HYPOTHESIS_PROFILE": HYPOTHESIS_PROFILE,
        "PYTHONPATH": os.pathsep.join([str(support), str(REPO / "tests" / "unit"), str(REPO)]),
    })
    return env


def build(root: Path, support: Path | None = None, stream=sys.stderr) -> RealResults:
    """Run the writers into ``root`` (created; must not exist yet) and check what they wrote.

    ``support``: a folder for the plug-in module the runs import and the runs' output (default:
    beside ``root``; never inside it, where the report would take it for a machine folder)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=False)
    support = Path(support or root.parent / f"{root.name}-support")
    support.mkdir(parents=True, exist_ok=True)
    (support / f"{ABSENT_PLUGIN}.py").write_text(ABSENT_SOURCE, encoding="utf-8")
    timings: dict[str, float] = {}
    started = time.monotonic()
    for batch in ([*CONFORMANCE_RUNS], *([run] for run in BENCH_RUNS)):
        t0 = time.monotonic()
        procs = []
        for run in batch:
            log = support / f"{run[0]}-{run[1]}.log"
            with open(log, "wb") as handle:  # a file, not a pipe: two runs at once never block on output
                procs.append((run, log, subprocess.Popen(
                    [sys.executable, "-m", *run[2]], cwd=REPO, env=_env(root, run[1], run[3], support),
                    stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)))
        failures = []
        for (what, mid, _, adapters, expected), log, proc in procs:
            try:
                proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.returncode != expected and not _only_timing_noise(root, what, mid, proc.returncode, expected):
                output = log.read_text(encoding="utf-8", errors="replace")[-8000:]
                failures.append(f"{what} for {mid} ({adapters}) exited {proc.returncode}, expected {expected}; "
                                f"its output ({log}):\n{output}")
        timings[" + ".join(f"{what} {mid}" for what, mid, *_ in batch)] = round(time.monotonic() - t0, 1)
        if failures:
            raise RealRunFailed("\n".join(failures))
    timings["total"] = round(time.monotonic() - started, 1)
    stream.write(f"real results built in {root}: {timings}\n")
    real = RealResults(root, MACHINES, timings)
    check_coverage(real)
    return real


def _only_timing_noise(root: Path, what: str, mid: str, returncode: int, expected: int) -> bool:
    """A bench run that should have passed but whose only failure is the timing self-check (the
    harness's clock against timeit, which a machine busy with other work can push out of range):
    its rows are all there, so the report tests can use it; anything else is a real failure."""
    if (what, returncode, expected) != ("bench", 1, 0):
        return False
    try:
        failed = json.loads((root / mid / BENCH_SUBDIR / "bench_meta.json").read_text())["failed_parts"]
    except (OSError, ValueError, KeyError):
        return False
    return bool(failed) and all(str(m).startswith("timing self-check failed") for m in failed.values())


def check_coverage(real: RealResults) -> None:
    """The tree holds every kind of result the report tests rely on; otherwise a writer changed
    and the tests would pass vacuously, so fail here, loudly."""
    missing = []
    a, b = (real.cells(m) for m in MACHINES)
    statuses_a = {c["status"] for c in a.values()}
    for status in ("passed", "failed", "xfailed", "not_applicable"):
        if status not in statuses_a:
            missing.append(f"real-a has no {status} cell")
    not_applicable = a.get(("numpy-onehot", NOT_APPLICABLE_CHECK), {})
    if (not_applicable.get("status"), not_applicable.get("detail")) != ("not_applicable", NOT_APPLICABLE_REASON):
        missing.append("real-a: numpy-onehot's declared not-applicable cell is missing")
    if not any(x["skip_reason"] for x in real.conformance("real-b")["adapters"]):
        missing.append("real-b has no whole-adapter skip")
    if {k[0] for k in a} & {k[0] for k in b} != {"numpy-gather", "numpy-onehot"}:
        missing.append("the machines do not share exactly the two NumPy adapters")
    for mid, wanted in (("real-a", {"ok", "skipped"}), ("real-b", {"ok", "error"})):
        found = {r["status"] for r in real.bench_rows(mid)}
        if not wanted <= found:
            missing.append(f"{mid}'s bench.csv has statuses {sorted(found)}, needs {sorted(wanted)}")
        if not real.plots(mid):
            missing.append(f"{mid} has no plots")
    if not real.bench_meta("real-b").get("failed_parts"):
        missing.append("real-b's bench run lists no failed part")
    if not real.bench_meta("real-a").get("crossover"):
        missing.append("real-a's bench run has no crossover summary")
    if missing:
        raise RealRunFailed("the real results lack what the report tests need: " + "; ".join(missing))


if __name__ == "__main__":  # python tests/real_results.py OUT: build a tree to look at
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/real_results.py OUT_DIR   (then: python -m harness.report --results OUT_DIR)")
    build(Path(sys.argv[1]))
