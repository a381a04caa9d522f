"""Timing one benchmark case in a part's process: the prepared tables it reuses, and the
timer that turns calls into pytest-benchmark rounds (CPU) or device-event samples (GPU).

``BenchSession`` (suite.py) decides which cases run; this module only measures them."""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from harness.bags import Bags
from harness.bench import timing
from harness.bench.sweep import STREAM, Case, Inputs, OneHotTimeGuard, Profile

SETTLE_S = 0.3  # pause between frameworks, see PreparedTables.switch_framework


class CaseSkipped(Exception):
    """A case that cannot or should not run here; the message is the reason."""


class PreparedTables:
    """Each adapter's prepared copy of the current table, kept while the cases share its shape
    (they run as one block, see ``sweep.randomised_blocks``): preparing a 2 GiB table again
    for every case would cost more than timing it."""

    def __init__(self, inputs: Inputs):
        self.inputs = inputs
        self._shape: tuple | None = None
        self._by_adapter: dict[str, Any] = {}
        self._last_framework: str | None = None

    def weights(self, adapter, case: Case):
        shape = (case.vocab, case.dim, case.dtype)
        if self._shape != shape:
            self.release()
            self._shape = shape
        if adapter.id not in self._by_adapter:
            w = adapter.prepare_weights(self.inputs.weights(case.vocab, case.dim, case.dtype))
            adapter.synchronize(w)
            self._by_adapter[adapter.id] = w
        return self._by_adapter[adapter.id]

    def release(self) -> None:
        self._by_adapter.clear()
        self._shape = None
        gc.collect()

    def switch_framework(self, label: str) -> None:
        """Before another framework (or the self-check) runs: drop the tables, then pause:
        thread pools of the framework that just ran (OpenBLAS, OpenMP, Eigen) keep spinning
        for a while, and on a machine with as many threads as cores they delay the next
        framework's first cases (measured: 8 ms per call instead of 40 us for torch right
        after NumPy's BLAS). Adapters of one framework share its pools: no pause between them."""
        if label == self._last_framework:
            return
        self.release()
        time.sleep(SETTLE_S)
        self._last_framework = label


class CaseTimer:
    """Measures one case: the first call (the compile a user waits for) and the second timed
    apart, a warm-up, then ``benchmark.pedantic`` rounds; on a GPU, device events around the
    same calls. Counts the seconds spent inside timed rounds (the run's useful time)."""

    def __init__(self, profile: Profile, tables: PreparedTables, guard: OneHotTimeGuard):
        self.profile = profile
        self.tables = tables
        self.guard = guard
        self.timed: bool | None = None  # whether pytest-benchmark timed the cases (not --benchmark-disable)
        self.timed_s = 0.0

    def measure(self, benchmark, adapter, case: Case, ids_np: np.ndarray | Bags,
                more_ids: list[np.ndarray | Bags] | None = None, call_limit: bool = True,
                budget: tuple[float, int] | None = None,
                between_rounds: Callable[[int], Callable[[], None]] | None = None) -> dict:
        """``ids_np``: one call's ids (cut into ``Bags`` for a bag case); ``more_ids``: further
        batches; the calls rotate through all of them (a stream). ``call_limit``: skip the case
        when one call is slower than the profile allows (off for the self-check, whose case the
        profile fixes: one slow sample on a loaded machine must not fail the method check).
        ``budget``: (seconds, most rounds) of timed rounds instead of the profile's.
        ``between_rounds``: given the planned iterations per round, what runs after each timed
        CPU round, outside its timing (the self-check's bare loop, taking turns with the rounds)."""
        sync = adapter.synchronize
        w = self.tables.weights(adapter, case)
        batches = [adapter.prepare_ids(b) for b in [ids_np, *(more_ids or [])]]
        for ids in batches:
            sync(ids)
        rotation = itertools.cycle(batches)
        # Cold rows time rows coming from memory: into one output buffer where the framework
        # takes one, not into fresh pages every call.
        buffer = adapter.output_buffer(w, batches[0]) if case.pass_ == "forward" and case.distribution == STREAM \
            else None
        if buffer is not None:
            def call():
                return adapter.forward_into(w, next(rotation), buffer)
        elif case.pass_ == "forward":
            fn = adapter.compile(lambda w, ids: adapter.forward(w, ids))

            def call():
                return fn(w, next(rotation))
        else:
            up = adapter.prepare_upstream(self.tables.inputs.upstream(case.output_rows, case.dim, case.dtype))
            sync(up)
            fn = adapter.compile(lambda w, ids, up: adapter.gradient(w, ids, up))

            def call():
                return fn(w, next(rotation), up)

        self.timed = bool(benchmark.enabled)
        out: dict[str, Any] = {"device": adapter.device, "id_batches": len(batches),
                               "output": "preallocated" if buffer is not None else "per call"}
        out["compile_s"] = timing.timed_call(call, sync)
        second = timing.timed_call(call, sync)
        if adapter.variant == "onehot":
            self.guard.record(adapter.id, case, second)
        if call_limit and second > self.profile.max_call_s:
            raise CaseSkipped(f"one call took {second:.2g} s > {self.profile.max_call_s:g} s per-call "
                              f"limit of profile {self.profile.name}")
        synced = timing.synced_call(call, sync)
        p = self.profile
        budget = budget or p.round_budget
        t_call = timing.warm_up(synced, *p.warm_up_limits(budget[0]))
        benchmark.group = f"{case.pass_}-{case.dtype}-D{case.dim}-{case.distribution}"
        if not benchmark.enabled:
            benchmark.pedantic(synced)  # smoke: the function runs once, untimed by pytest-benchmark
            out.update(median_s=t_call, iqr_s=None, rounds=1, iterations=1, wall_median_s=t_call,
                       timer="smoke: median of the last warm-up calls, not a measurement")
        elif adapter.device == "cpu":
            iterations, rounds = self.plan(t_call, budget)
            turns = {} if between_rounds is None else {"teardown": between_rounds(iterations)}
            benchmark.pedantic(synced, rounds=rounds, iterations=iterations, **turns)
            st = benchmark.stats.stats
            out.update(median_s=st.median, iqr_s=st.iqr, rounds=st.rounds, iterations=iterations,
                       wall_median_s=st.median, timer="perf_counter, framework sync after every call",
                       samples=[float(x) for x in st.data])
            self.timed_s += sum(st.data) * iterations
        else:
            out.update(self.measure_gpu(benchmark, adapter, call, sync, t_call, budget))
        with timing.memory_probe(adapter) as probe:
            synced()
        out["peak_mem_bytes"] = probe.extra_bytes
        return out

    def plan(self, t_call: float, budget: tuple[float, int]) -> tuple[int, int]:
        p = self.profile
        seconds, max_rounds = budget
        return timing.plan_rounds(t_call, p.min_round_s, seconds, p.min_rounds, max_rounds)

    def measure_gpu(self, benchmark, adapter, call, sync, t_call: float, budget: tuple[float, int]) -> dict:
        """Wall time per call (K calls, one sync per round) from pytest-benchmark, device time
        from events around the same K calls."""
        iterations, rounds = self.plan(t_call, budget)
        benchmark.pedantic(timing.synced_every(call, sync, iterations), rounds=rounds,
                           iterations=iterations, warmup_rounds=1)
        st = benchmark.stats.stats
        self.timed_s += sum(st.data) * iterations
        out = {"wall_median_s": st.median, "rounds": st.rounds, "iterations": iterations}
        make_event = timing.event_factory(adapter)
        if make_event is None:
            out.update(median_s=st.median, iqr_s=st.iqr, samples=[float(x) for x in st.data],
                       timer="wall: no device event timer for this framework (median_s = wall)")
            return out
        samples = timing.event_times(call, sync, make_event, rounds, iterations)
        median, iqr = timing.quartiles(samples)
        out.update(median_s=median, iqr_s=iqr, samples=samples,
                   timer="device events around K calls; wall = K calls + 1 sync")
        return out
