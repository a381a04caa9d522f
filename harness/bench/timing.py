"""Sync-aware timing: first call, warm-up, round planning, CUDA-event device time, memory.

CPU calls are synchronised one by one (``adapter.synchronize`` inside the timed callable),
so a time is one complete call as a user sees it, including dispatch. On a GPU the wall
time is K calls followed by one synchronisation (launches overlap as in a training loop),
and the device time comes from events recorded around the K calls on the device's stream.

Adapters may provide ``device_timer_event()`` (an object with ``record()``,
``synchronize()`` and ``elapsed_time(end) -> ms``) and ``device_memory_probe()``; otherwise
their framework's runtime hooks provide them (``harness.framework.Runtime``). Without an
event source, GPU rows report wall time in both columns.
"""

from __future__ import annotations

import ctypes
import gc
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.framework import DeviceMemoryProbe

perf_counter = time.perf_counter


def timed_call(fn: Callable[[], Any], sync: Callable[[Any], None]) -> float:
    """Seconds for one call and its sync (the first one includes compilation/tracing)."""
    start = perf_counter()
    sync(fn())
    return perf_counter() - start


# After a fresh table a framework's first calls are slower for several calls (fresh output
# pages, its allocator, its thread pool waking): measured on 2 cores, torch's gather of 16384 x 64
# floats took 0.8-2.3 ms for ~8 calls before settling at 0.2 ms, torch.compile's 5 ms for ~6.
# So the warm-up goes on while the calls still get faster: until the median of the last
# SETTLE_WINDOW calls is within SETTLE_GAIN of the window before.
SETTLE_WINDOW = 5
SETTLE_GAIN = 0.1


def settled(times: list[float], window: int = SETTLE_WINDOW) -> bool:
    """Whether the last ``window`` calls are no longer clearly faster than the ``window`` before."""
    if len(times) < 2 * window:
        return False
    last = statistics.median(times[-window:])
    before = statistics.median(times[-2 * window:-window])
    return last >= (1 - SETTLE_GAIN) * before


def warm_up(call: Callable[[], None], min_s: float, max_s: float, max_calls: int = 10_000) -> float:
    """Run ``call`` for at least ``min_s`` seconds and then until it has settled (``settled``),
    for at most ``max_s`` seconds or ``max_calls`` calls (at least one call). Returns the
    median seconds per call of the last window: the steady state the rounds are planned on."""
    times: list[float] = []
    start = perf_counter()
    while True:
        before = perf_counter()
        call()
        after = perf_counter()
        times.append(after - before)
        elapsed = after - start
        if len(times) >= max_calls or elapsed >= max_s or (elapsed >= min_s and settled(times)):
            return statistics.median(times[-SETTLE_WINDOW:])


def plan_rounds(t_call: float, min_round_s: float, budget_s: float, min_rounds: int,
                max_rounds: int) -> tuple[int, int]:
    """(iterations, rounds): enough iterations that a round lasts ``min_round_s`` (timer
    resolution and loop overhead become negligible), then as many rounds as fit the budget,
    clamped to [min_rounds, max_rounds]."""
    t_call = max(t_call, 1e-9)
    iterations = max(1, math.ceil(min_round_s / t_call))
    rounds = int(budget_s / (iterations * t_call))
    return iterations, max(min_rounds, min(max_rounds, rounds))


def synced_call(fn: Callable[[], Any], sync: Callable[[Any], None]) -> Callable[[], None]:
    """One call followed by the framework's own synchronisation (CPU timing)."""

    def call():
        sync(fn())

    return call


def synced_every(fn: Callable[[], Any], sync: Callable[[Any], None], every: int) -> Callable[[], None]:
    """Calls that synchronise on every ``every``-th call only: with pytest-benchmark's
    ``iterations=every`` the sync lands on the last call of each round, inside the timed
    region (GPU wall time per call, launches pipelined)."""
    state = {"n": 0}

    def call():
        out = fn()
        state["n"] += 1
        if state["n"] % every == 0:
            sync(out)

    return call


def quartiles(samples: list[float]) -> tuple[float, float]:
    """(median, interquartile range) of per-call times."""
    if len(samples) < 2:
        return (samples[0] if samples else math.nan), 0.0
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q2, q3 - q1


def event_times(fn: Callable[[], Any], sync: Callable[[Any], None], make_event: Callable[[], Any],
                rounds: int, iterations: int) -> list[float]:
    """Per-call device seconds from event pairs around each round of ``iterations`` calls.

    All rounds are queued before one final synchronisation, so the events see kernel time
    without host round trips (the TorchBench/FBGEMM pattern)."""
    pairs = []
    out = None
    for _ in range(rounds):
        start, end = make_event(), make_event()
        start.record()
        for _ in range(iterations):
            out = fn()
        end.record()
        pairs.append((start, end))
    sync(out)
    pairs[-1][1].synchronize()
    return [s.elapsed_time(e) / 1e3 / iterations for s, e in pairs]


def event_factory(adapter) -> Callable[[], Any] | None:
    """A device-event maker for this adapter's stream (its own hook, else its framework
    runtime's), or None if there is none."""
    hook = getattr(adapter, "device_timer_event", None)
    if callable(hook):
        return hook
    runtime = getattr(adapter, "runtime", None)
    return runtime.device_event(adapter.device) if runtime is not None and adapter.device != "cpu" else None


def _cpu_times(cores: set[int]) -> tuple[int, int] | None:
    """(busy, total) jiffies of ``cores`` from /proc/stat; None where it cannot be read."""
    busy = total = 0
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cores:
                values = [int(v) for v in fields]
                idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
                total += sum(values[:8])
                busy += sum(values[:8]) - idle
    except (OSError, ValueError, IndexError):
        return None
    return busy, total


def busy_share(seconds: float = 0.5) -> float | None:
    """Share of this process's cores that others kept busy during ``seconds`` of our idling."""
    cores = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set()
    before = _cpu_times(cores)
    time.sleep(seconds)
    after = _cpu_times(cores)
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


# --- memory ---------------------------------------------------------------------------
def _proc_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class CpuMemoryProbe:
    """Extra resident memory one call needs: peak RSS during the call minus RSS before.

    Freed heap memory is first returned to the OS (gc + malloc_trim) so buffers the
    allocator would silently reuse are counted; the kernel's RSS high-water mark is reset
    through /proc/self/clear_refs ("5"). Memory a framework pools and never frees counts
    only when the pool grows. None where /proc is unavailable."""

    def __enter__(self):
        gc.collect()
        _malloc_trim()
        self.before = _proc_status_kib("VmRSS")
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.peak = None
        return self

    def __exit__(self, *exc):
        self.peak = _proc_status_kib("VmHWM")
        return False

    @property
    def extra_bytes(self) -> int | None:
        if not self.reset or self.before is None or self.peak is None:
            return None
        return max(0, self.peak - self.before)


class NoMemoryProbe(DeviceMemoryProbe):
    """For a device whose framework counts no allocations: the figure is unknown (None)."""

    def start(self):
        return None

    def peak(self):
        return None


def memory_probe(adapter):
    """Host memory on the CPU; on a device the adapter's own probe, else its framework runtime's
    (``Runtime.memory_probe``), else none."""
    if adapter.device == "cpu":
        return CpuMemoryProbe()
    hook = getattr(adapter, "device_memory_probe", None)
    if callable(hook):
        return hook()
    runtime = getattr(adapter, "runtime", None)
    probe = runtime.memory_probe(adapter.device) if runtime is not None else None
    return probe if probe is not None else NoMemoryProbe()
