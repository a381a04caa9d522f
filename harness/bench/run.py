"""``harness.bench run``: one part (one process of frameworks) of a benchmark run.

The thread environment must exist before any framework is imported, so the benchmarks run
in a child pytest process started with it: the OMP/MKL/OPENBLAS/BLIS pools and each
registered framework's own knobs (its runtime's ``process_env``) set to the same count, and the
CPU affinity narrowed to that many cores when fewer than the mask are requested (the one limit
a framework without a thread knob honours). This parent never imports a framework.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.bench import parts
from harness.bench.sweep import DEFAULT_ONEHOT_BUDGET, Profile
from harness.errors import CorruptResults, HarnessError
from harness.machine import BLAS_THREAD_ENV
from harness.registry import match_spec, requested_specs, runtime_env
from harness.results import atomic_write_json, read_json

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "tests" / "bench"


def thread_env(threads: int, base: dict[str, str]) -> dict[str, str]:
    """``base`` with every thread knob set to ``threads``: the BLAS and OpenMP pools', and what
    each registered framework's runtime sets before import (harness.framework.Runtime.process_env)."""
    env = dict(base)
    for var in BLAS_THREAD_ENV:
        env[var] = str(threads)
    env.update(runtime_env(threads, env))
    return env


def check_specs(env: dict[str, str]) -> None:
    """Fail fast, with one line, on an adapter id that matches nothing (no imports)."""
    for spec in requested_specs(env) or []:
        if ":" not in spec:
            match_spec(spec)


def runs_on_profile_devices(profile: Profile, env: dict[str, str]) -> bool:
    """Whether the selection can hold an adapter on the profile's devices (no framework imported).

    Raises HarnessError when the profile needs a device this machine does not have."""
    if not profile.devices or "cpu" in profile.devices:
        return True
    from harness.registry import framework_of, visible_devices

    if not set(profile.devices) & set(visible_devices()):
        raise HarnessError(f"profile {profile.name} measures adapters on {', '.join(profile.devices)}, and no "
                           f"framework here sees one (nvidia-smi finds no GPU); use --profile quick or full")
    for spec in requested_specs(env) or ["*"]:
        if ":" in spec:
            return True
        builtins, plugins = match_spec(spec)
        if plugins or any(set(profile.devices) & set(framework_of(b).devices) for b in builtins):
            return True
    return False


def _cores(threads: int) -> set[int]:
    mask = sorted(os.sched_getaffinity(0))
    if threads > len(mask):
        raise HarnessError(f"--threads {threads}: only {len(mask)} cores are in this process's "
                           f"affinity mask")
    return set(mask[:threads])


def run_part(*, part: str, out: Path, profile: Profile, threads: int | None, run_id: str,
             onehot_budget: int = DEFAULT_ONEHOT_BUDGET, pytest_args: list[str] | None = None,
             stream=sys.stderr, base_env: dict[str, str] | None = None) -> int:
    """One part in a child pytest process. ``base_env``: its environment before the thread
    settings (default: this process's), e.g. with the part's adapter selection."""
    base_env = dict(os.environ if base_env is None else base_env)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts.check_machine(out)
    rdir = parts.run_dir(out, run_id)
    rdir.mkdir(parents=True, exist_ok=True)
    target = parts.part_file(rdir, part)
    check_specs(base_env)
    if not runs_on_profile_devices(profile, base_env):
        stream.write(f"bench {part} [{profile.name}]: no adapter of this part runs on "
                     f"{', '.join(profile.devices or ())}; nothing to measure\n")
        return 0
    threads = threads or len(os.sched_getaffinity(0))
    cores = _cores(threads)
    scratch = out / "tmp" / f"bench-{part}-{run_id}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    record_path, pb_path = scratch / "record.json", scratch / "pytest-benchmark.json"
    cmd = [sys.executable, "-m", "pytest", str(SUITE), "-p", "no:cacheprovider", "-p", "no:randomly",
           "-q", "-rfE", "--no-header", "--benchmark-quiet", "--benchmark-disable-gc",
           f"--benchmark-json={pb_path}", f"--bench-profile={profile.name}", f"--bench-part={part}",
           f"--bench-run-id={run_id}", f"--bench-record={record_path}", f"--bench-threads={threads}",
           f"--bench-onehot-budget={onehot_budget}"]
    if not profile.timed:
        cmd.append("--benchmark-disable")
    cmd += pytest_args or []
    env = thread_env(threads, base_env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    full_mask = cores == set(os.sched_getaffinity(0))
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env,
                              preexec_fn=None if full_mask else (lambda: os.sched_setaffinity(0, cores)))
        try:
            record = read_json(record_path)
        except CorruptResults:
            message = (f"part {part}: the benchmark process exited with code {proc.returncode} "
                       f"without writing its record (see its output above)")
            parts.record_part(rdir, run_id, part, profile.name, "failed", message)
            raise HarnessError(message) from None
        if record.get("fatal"):
            parts.record_part(rdir, run_id, part, profile.name, "failed", record["fatal"])
            raise HarnessError(record["fatal"])
        doc = read_json(pb_path) if pb_path.exists() else {"benchmarks": []}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _remove_empty(out / "tmp")
    doc["embedding_harness"] = record
    atomic_write_json(target, doc)
    counts: dict[str, int] = {}
    for case in record["cases"]:
        counts[case.get("status", "?")] = counts.get(case.get("status", "?"), 0) + 1
    problems = part_problems(record, counts, proc.returncode)
    status = "failed" if problems else "ok"
    parts.record_part(rdir, run_id, part, profile.name, status, "; ".join(problems))
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    bw = (record.get("copy_bandwidth") or {}).get("gbps")
    stream.write(f"bench {part} [{profile.name}, threads={threads}"
                 + (f", copy {bw:.1f} GB/s" if bw else "") + f"]: {summary} -> {target}\n")
    return 0 if status == "ok" else 1


def part_problems(record: dict, counts: dict[str, int], returncode: int) -> list[str]:
    """Why a part that wrote its record still failed, each named (empty: it did not)."""
    problems = []
    if counts.get("error"):
        problems.append(f"{counts['error']} benchmark(s) raised an error")
    bad = [c for c in record.get("self_check") or [] if c.get("ok") is False]
    if bad:
        problems.append("timing self-check failed: " + "; ".join(c.get("problem", "") for c in bad))
    if returncode not in (0,) and not problems:
        problems.append(f"the benchmark process exited with code {returncode}")
    return problems


def _remove_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass
