"""Who ran this: a stable machine id and the metadata stored beside every result.

The id names the hardware class (CPU model, cores, memory, GPU), not the host, so reruns on
the same machine land in the same ``results/<machine-id>/`` and different machines never
share a folder. Override with EMBEDDING_HARNESS_MACHINE_ID."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from harness.errors import HarnessError

ID_ENV = "EMBEDDING_HARNESS_MACHINE_ID"
MAX_ID_LENGTH = 64
# A folder name under results/: starts with a letter or digit (so never '.' or '..'), then
# letters, digits, '.', '_' and '-'; short enough for any file system and a readable table.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _cache_bytes(level: str) -> int | None:
    """Size of one cache level (``L2``, ``L3``) from sysfs, e.g. '32768K' -> bytes."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    if not base.exists():
        return None
    for index in base.glob("index*"):
        try:
            if f"L{(index / 'level').read_text().strip()}" != level:
                continue
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        units = {"K": 1024, "M": 1024**2, "G": 1024**3}
        return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)
    return None


@lru_cache(maxsize=1)
def gpus() -> list[dict]:
    """GPUs seen by nvidia-smi (name, memory, driver); empty without one."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit",
             "--format=csv,noheader"], capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    fields = ("name", "memory", "driver", "max_sm_clock", "power_limit")
    rows = [line.split(",") for line in out.splitlines() if line.strip()]
    return [dict(zip(fields, (p.strip() for p in row), strict=False)) for row in rows]


def cuda_visible() -> bool:
    """Whether a CUDA GPU is present (nvidia-smi), without importing any framework."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(gpus())


def _slug(text: str) -> str:
    text = re.sub(r"\((r|tm|R|TM)\)|cpu @.*|processor", "", text, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def validate_machine_id(mid: str, source: str = ID_ENV) -> str:
    """``mid`` if it is a safe folder name, else a one-line ``HarnessError`` with the fix."""
    if len(mid) > MAX_ID_LENGTH:
        raise HarnessError(f"{source}={mid[:40]!r}... is {len(mid)} characters: use at most {MAX_ID_LENGTH}")
    if not _SAFE_ID.fullmatch(mid):
        raise HarnessError(f"{source}={mid!r}: start with a letter or digit, then use letters, digits, "
                           f"'.', '_' and '-' only (e.g. my-box-2c)")
    return mid


def machine_id() -> str:
    forced = os.environ.get(ID_ENV, "").strip()
    if forced:
        return validate_machine_id(forced)
    mem = _memory_bytes()
    parts = [platform.system().lower(), platform.machine().lower(), _slug(_cpu_model()),
             f"{os.cpu_count()}c"]
    if mem:
        parts.append(f"{round(mem / 2**30)}g")
    for gpu in gpus()[:1]:
        parts.append(_slug(gpu["name"].replace("NVIDIA", "")))
    return "-".join(p for p in parts if p)[:MAX_ID_LENGTH].rstrip("-._")


def git_commit() -> dict:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=root, capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha or None, "dirty": dirty if sha else None}


# The BLAS and OpenMP pools' thread counts, whatever the framework.
BLAS_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "BLIS_NUM_THREADS")


def thread_env_names() -> list[str]:
    """The variables that set how a process computes: the BLAS pools', and those the registered
    frameworks set (their runtimes' thread knobs, their process environment)."""
    from harness.registry import environment_names

    return list(dict.fromkeys((*BLAS_THREAD_ENV, *environment_names())))


def metadata() -> dict:
    """Everything a reader needs to judge a result from this machine."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "machine_id": machine_id(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "memory_bytes": _memory_bytes(),
        "l2_cache_bytes": _cache_bytes("L2"),
        "l3_cache_bytes": _cache_bytes("L3"),
        "gpus": gpus(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "git": git_commit(),
        "thread_env": {k: os.environ[k] for k in thread_env_names() if k in os.environ},
    }
