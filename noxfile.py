"""Entry points: nox -s conformance | bench | report | tests | lint | mutants | mutmut.

All sessions share one virtual environment (.nox/harness) with every framework installed:
torch, TensorFlow, JAX and Keras together are ~3 GB, and installing them once per session
(nox's default) would cost minutes each time (nox#167). The environment is rebuilt only when
pyproject.toml changes.

Keras fixes its backend at import, and frameworks compete for threads, so work runs in
separate processes: conformance packs each framework's adapters (each Keras backend apart)
into processes of about 40 s of checks, every plug-in alone; bench runs one process ("part")
per framework and per Keras backend.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests", "conformance"]
ROOT = Path(__file__).parent
ENV_DIR = ROOT / ".nox" / "harness"


def _python(session: nox.Session) -> str:
    """The shared environment's interpreter, (re)installed when pyproject.toml changed."""
    python = ENV_DIR / "bin" / "python"
    stamp = ENV_DIR / ".pyproject-sha256"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not python.exists():
        session.run(sys.executable, "-m", "venv", str(ENV_DIR), external=True)
    if not stamp.exists() or stamp.read_text() != wanted:
        session.run(str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip", external=True)
        session.run(str(python), "-m", "pip", "install", "--quiet", "-e", ".[all,dev]", external=True)
        stamp.write_text(wanted)
    return str(python)


@nox.session(venv_backend="none")
def conformance(session: nox.Session) -> None:
    """Property tests: every adapter's forward and gradient against gather semantics.

    The adapters run in isolated processes (harness/supervisor.py): a crash or a hang is the
    failure of the check that was running, and the rest goes on. Options before ``--`` go to the
    runner (``--jobs``, ``--timeout``); arguments after it go to pytest."""
    python = _python(session)
    runner, pytest_args = _split_posargs(session.posargs)
    try:
        session.run(python, "-m", "harness.conformance", "run", *runner, "--", *pytest_args, external=True)
    except nox.command.CommandFailed:
        session.error("conformance: see the lines above (results/<machine-id>/conformance.md for details)")


def _split_posargs(posargs: list[str]) -> tuple[list[str], list[str]]:
    """``nox -s conformance -- --jobs 1 -- -k torch``: runner options, then pytest arguments.
    Without a second ``--``, runner options are recognised by name and the rest goes to pytest."""
    if "--" in posargs:
        cut = posargs.index("--")
        return list(posargs[:cut]), list(posargs[cut + 1:])
    runner, rest, args = [], [], list(posargs)
    while args:
        arg = args.pop(0)
        name = arg.split("=")[0]
        if name in ("--jobs", "--timeout"):
            runner.append(arg)
            if "=" not in arg and args:
                runner.append(args.pop(0))
        else:
            rest.append(arg)
    return runner, rest


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Timing tables (pytest-benchmark): nox -s bench -- --profile quick|full|smoke.

    Each profile writes its own folder (full: results/<machine-id>/, others below it in
    profile-<name>/), so a quick run never replaces a full one."""

    python = _python(session)
    try:  # a bad selection or machine id: its one line, then stop before any part runs
        session.run(python, "-m", "harness.bench", "check", *session.posargs, external=True, silent=True)
    except nox.command.CommandFailed:
        session.error("bench: configuration error (above)")
    # Every part (one process per framework and per Keras backend, harness/bench/parts.py) under
    # one run id, then finalize: python -m harness.bench all.
    try:
        session.run(python, "-m", "harness.bench", "all", *session.posargs, external=True)
    except nox.command.CommandFailed:
        session.error("bench: benchmark parts failed (listed above and in BENCH.md)")


@nox.session(venv_backend="none")
def mutants(session: nox.Session) -> None:
    """The harness tests itself: the kill rate of the broken adapters in tests/unit/broken_adapters.py
    (each models one realistic bug; every one must be caught, the faithful control must pass).

    ``nox -s mutants -- --readme README.md`` also refreshes the README's table."""
    python = _python(session)
    session.run(python, "-m", "harness.killrate", "broken_adapters", "--out", "results/killrate.json",
                *session.posargs, env={"PYTHONPATH": str(ROOT / "tests" / "unit")}, external=True)


@nox.session(venv_backend="none")
def mutmut(session: nox.Session) -> None:
    """Mutation testing of the modules that decide verdicts and figures ([tool.mutmut] in
    pyproject.toml): writes results/mutation.json and .md (score, every surviving mutant's diff)
    and the README's score; fails under 90 %. Runs for tens of minutes on 2 cores, so CI runs it
    on a schedule (.github/workflows/mutation.yml); ``nox -s mutmut -- harness.oracle*`` narrows it."""
    python = _python(session)
    # The report tests read a tree the real writers produced; under mutmut no test may start
    # them, so it is built here, once, by the unmutated code (tests/conftest.py reads it).
    real = ENV_DIR.parent / "mutmut-real-results"
    if real.exists():
        shutil.rmtree(real)
    session.run(python, "tests/real_results.py", str(real), external=True)
    mutmut_bin = str(ENV_DIR / "bin" / "mutmut")
    # The derandomised ci profile: a mutant's verdict must not depend on the examples drawn.
    session.run(mutmut_bin, "run", *session.posargs, external=True,
                env={"EMBEDDING_HARNESS_TEST_REAL_RESULTS": str(real), "HYPOTHESIS_PROFILE": "ci"})
    # Modules a narrowed run leaves out keep their committed figures while their source is unchanged.
    session.run(python, "-m", "harness.mutation", "--out", "results/mutation.json", "--readme", "README.md",
                "--keep", "results/mutation.json", external=True)


@nox.session(venv_backend="none")
def report(session: nox.Session) -> None:
    """One report over every results/<machine-id>/: results/REPORT.md and report.html."""
    python = _python(session)
    session.run(python, "-m", "harness.report", *session.posargs, external=True)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The harness's own tests (oracle, registry, checks, writers, error paths, report in a browser)."""
    python = _python(session)
    session.run(python, "-m", "pytest", "tests/unit", "tests/browser", *session.posargs, external=True)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff over the code; the CI workflows against GitHub's workflow schema."""
    python = _python(session)
    session.run(python, "-m", "ruff", "check", "harness", "backends", "tests", "noxfile.py",
                external=True)
    # The schema ships inside check-jsonschema (dev extra): no network needed.
    workflows = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.y*ml"))
    if workflows:
        session.run(python, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                    *workflows, external=True)
