"""The in-process side of a benchmark part: what ``tests/bench`` runs for each case.

One ``BenchSession`` lives in the pytest process of a part. It loads the adapters from the
registry, applies the thread settings, measures this process's copy bandwidth, runs each
case (inputs prepared on the device outside the timed region, first call timed apart,
warm-up, then ``benchmark.pedantic``), and finally writes the part record that
``harness.bench run`` stores inside ``bench-<part>.json``.
"""

from __future__ import annotations

import datetime as _dt
import gc
import itertools
import os
import random
import time
import timeit
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import machine
from harness.bags import Bags
from harness.bench import membw, timing
from harness.bench.sweep import (
    DEFAULT_ONEHOT_BUDGET,
    STREAM,
    Case,
    GiB,
    Inputs,
    OneHotTimeGuard,
    Profile,
    bags_of,
    cases_for,
    duplicate_share,
    index_dtype_for,
    onehot_memory_reason,
    randomised_blocks,
    stream_batches,
)
from harness.checks import family_of
from harness.errors import HarnessError
from harness.results import atomic_write_json

RECORD_SCHEMA = "embedding-harness/bench-part/1"
SETTLE_S = 0.3  # pause between adapters, see BenchSession.switch_adapter
# The harness and a bare timeit loop time the same call in one process: beyond these
# ratios the harness's own timing path is suspect and the part is reported as failed.
SELF_CHECK_RATIO = (0.25, 4.0)


class CaseSkipped(Exception):
    """A case that cannot or should not run here; the message is the reason."""


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def apply_thread_settings(threads: int, runtimes) -> dict:
    """Set the thread knobs of each framework runtime and of the BLAS/OpenMP pools; report
    what each uses."""
    report: dict[str, Any] = {}
    for runtime in runtimes:
        settings = runtime.set_threads(threads)
        if settings is not None:
            report[runtime.name or type(runtime).__name__] = settings
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        threadpool_limits(limits=threads)
        report["blas_openmp"] = [{"api": i.get("internal_api"), "library": Path(i.get("filepath", "")).name,
                                  "num_threads": i.get("num_threads")} for i in threadpool_info()]
    except ImportError:
        report["blas_openmp"] = "threadpoolctl not installed: only the *_NUM_THREADS env vars apply"
    return report


@dataclass
class Item:
    """One test item: a case for an adapter, or an adapter that could not be loaded."""

    key: str
    adapter_id: str
    case: Case | None = None
    slot: Any = None


@dataclass
class BenchSession:
    profile: Profile
    part: str = "adhoc"
    run_id: str = ""
    threads: int | None = None
    onehot_budget: int = DEFAULT_ONEHOT_BUDGET
    specs: list[str] | None = None
    items: dict[str, Item] = field(default_factory=dict)
    adapters: dict[str, dict] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)
    self_checks: list[dict] = field(default_factory=list)
    fatal: str | None = None
    started: str = ""
    copy_bw: dict | None = None
    gemm_flops: float | None = None
    thread_report: dict | None = None
    load_average: dict = field(default_factory=dict)
    timed: bool | None = None  # whether pytest-benchmark timed the cases (not --benchmark-disable)
    device_info: dict | None = None  # GPU copy bandwidth and L2, when CUDA adapters run
    busy_share: float | None = None  # CPU share others used on our cores while we idled at start
    l3_bytes: int | None = None
    timed_s: float = 0.0  # seconds inside timed rounds (the run's useful time)
    reference_s: float = 0.0  # seconds inside the self-checks' bare timeit loops (measuring too)

    def __post_init__(self):
        self.threads = self.threads or len(os.sched_getaffinity(0))
        # Room for the largest table and upstream gradients of a profile, so that the next adapter
        # finds them instead of drawing gigabytes again.
        self.inputs = Inputs(capacity_bytes=max(2 * GiB, 4 * self.profile.max_output_bytes))
        self.guard = OneHotTimeGuard(None, self.profile.max_call_s)
        self._table: tuple | None = None  # the table shape whose prepared copies are held
        self._tables: dict[str, Any] = {}  # adapter id -> that table, prepared by the adapter
        self._last_framework: str | None = None
        self.order_seed: int | None = None
        self._ready = False
        self.started = now()

    # --- collection ---------------------------------------------------------------------
    def collect(self) -> list[Item]:
        """Load the adapters (importing their frameworks) and expand them into items."""
        from harness import registry

        try:
            slots = registry.select(self.specs, devices=list(self.profile.devices) if self.profile.devices else None)
        except HarnessError as exc:
            self.fatal = str(exc)
            return []
        for slot in slots:
            if slot.adapter is None:
                self.adapters[slot.id] = {"id": slot.id, "skip_reason": slot.skip_reason}
                self.items[f"{slot.id}-unavailable"] = Item(f"{slot.id}-unavailable", slot.id, None, slot)
                continue
            adapter = slot.adapter
            for case in cases_for(self.profile, adapter.declared.weight_dtypes, family_of(adapter)):
                key = f"{adapter.id}-{case.key}"
                self.items[key] = Item(key, adapter.id, case, slot)
        # The order is random within each table, from a seed the record keeps.
        self.order_seed = zlib.crc32(f"{self.run_id}/{self.part}/{self.started}".encode())
        ordered = randomised_blocks(list(self.items.values()), random.Random(self.order_seed))
        self.items = {item.key: item for item in ordered}
        return ordered

    def start(self) -> None:
        """Once, before the first case: threads, machine rates, adapter metadata."""
        if self._ready:
            return
        self._ready = True
        # Framework imports leave millions of objects to the cyclic GC (a full collection
        # took 0.25 s with TF+JAX+torch); freezing them keeps per-case collections cheap.
        gc.collect()
        gc.freeze()
        self.load_average = {"start": os.getloadavg()}
        self.busy_share = timing.busy_share()
        self.thread_report = apply_thread_settings(self.threads, self._runtimes())
        meta = machine.metadata()
        self.l3_bytes = meta.get("l3_cache_bytes")
        nbytes = self.profile.copy_bytes or membw.default_copy_bytes(meta.get("l3_cache_bytes"))
        self.copy_bw = membw.copy_bandwidth(self.threads, nbytes, repeats=7, single_thread_repeats=3)
        self.gemm_flops = membw.gemm_flops_per_s()
        self.guard.gemm = self.gemm_flops
        devices = {a.device for a in self._adapters()} - {"cpu"}
        if devices:  # the device copy bandwidth, once per part, by the first framework that can
            from harness.registry import runtimes

            self.device_info = membw.device_copy_info(sorted(devices)[0], [*self._runtimes(), *runtimes()])
        for item in self.items.values():
            adapter = item.slot.adapter if item.slot is not None else None
            if adapter is not None and adapter.id not in self.adapters:
                self.adapters[adapter.id] = self.describe(adapter)

    def _adapters(self) -> list:
        loaded = (i.slot.adapter for i in self.items.values() if i.slot is not None)
        return list({id(a): a for a in loaded if a is not None}.values())

    def _runtimes(self) -> list:
        """The runtime hooks of this part's adapters, each once."""
        return list({id(a.runtime): a.runtime for a in self._adapters() if a.runtime is not None}.values())

    @staticmethod
    def describe(adapter) -> dict:
        try:
            info = adapter.describe()
        except Exception as exc:  # a broken describe must not hide the timings
            info = {"id": adapter.id, "describe_error": f"{type(exc).__name__}: {exc}"}
        info.update({"framework_label": adapter.framework_label, "framework": adapter.framework,
                     "variant": adapter.variant, "device": adapter.device,
                     "gather_twin": adapter.gather_twin, "gradient": adapter.declared.gradient,
                     "single_threaded": adapter.single_threaded,
                     "skip_reason": None})
        return info

    # --- one case -------------------------------------------------------------------------
    def _weights(self, adapter, case: Case):
        """The table as this adapter prepared it, kept for every adapter while the cases share
        its shape (they run as one block, see ``randomised_blocks``)."""
        table = (case.vocab, case.dim, case.dtype)
        if self._table != table:
            self.release()
            self._table = table
        if adapter.id not in self._tables:
            w = adapter.prepare_weights(self.inputs.weights(case.vocab, case.dim, case.dtype))
            adapter.synchronize(w)
            self._tables[adapter.id] = w
        return self._tables[adapter.id]

    def release(self) -> None:
        self._tables.clear()
        self._table = None
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

    def run_item(self, benchmark, key: str) -> dict:
        item = self.items[key]
        if item.case is None:
            raise CaseSkipped(item.slot.skip_reason or "adapter unavailable")
        self.start()
        adapter, case = item.slot.adapter, item.case
        if case.pass_ in adapter.untimed_passes:
            raise CaseSkipped(adapter.untimed_passes[case.pass_])
        result = self.results.setdefault(key, {"adapter": adapter.id, **case.as_dict()})
        ids_np = self.inputs.ids(case.vocab, case.n_ids, case.distribution)
        result["unique"] = self.inputs.unique_count(case.vocab, case.n_ids, case.distribution)
        result["dup_rate"] = duplicate_share(result["unique"], case.n_ids)
        index_dtype = index_dtype_for(adapter.declared.index_dtypes)
        if index_dtype is None:
            raise CaseSkipped(f"declares neither int32 nor int64 ids ({adapter.declared.index_dtypes})")
        result["index_dtype"] = index_dtype
        if adapter.variant == "onehot":
            reason = (onehot_memory_reason(case, self.onehot_budget)
                      or self.guard.reason(adapter.id, case, host_gemm=adapter.device == "cpu"))
            if reason:
                raise CaseSkipped(reason)
        self.switch_framework(adapter.framework_label)
        count = stream_batches(case, self._cache_bytes(adapter))
        batches = [ids_np, *self.inputs.id_batches(case.vocab, case.n_ids, case.distribution, count)[1:]]
        batches = [b.astype(index_dtype) for b in batches]
        if case.pooling:  # a bag adapter takes the same ids cut into bags of L
            batches = [bags_of(b, case.pooling) for b in batches]
        measured = self.measure(benchmark, adapter, case, batches[0], batches[1:])
        result.update(measured)
        if adapter.variant == "onehot" and measured.get("median_s"):
            self.guard.record(adapter.id, case, measured["median_s"])
        benchmark.extra_info.update(result)
        return result

    def _cache_bytes(self, adapter) -> int | None:
        """The last-level cache a stream must overflow: the GPU's L2, or the host's L3."""
        if adapter.device != "cpu":
            return (self.device_info or {}).get("l2_cache_bytes")
        return self.l3_bytes

    def measure(self, benchmark, adapter, case: Case, ids_np: np.ndarray | Bags,
                more_ids: list[np.ndarray | Bags] | None = None, call_limit: bool = True) -> dict:
        """``ids_np``: one call's ids (cut into ``Bags`` for a bag case); ``more_ids``: further
        batches; the calls rotate through all of them (a stream). ``call_limit``: skip the case
        when one call is slower than the profile allows (off for the self-check, whose case the
        profile fixes: one slow sample on a loaded machine must not fail the method check)."""
        sync = adapter.synchronize
        w = self._weights(adapter, case)
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
            up = adapter.prepare_upstream(self.inputs.upstream(case.output_rows, case.dim, case.dtype))
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
        # The first two calls warmed it already: one more at least, and the profile's warm-up time.
        t_call = timing.warm_up(synced, self.profile.warmup_s, min_calls=1)
        benchmark.group = f"{case.pass_}-{case.dtype}-D{case.dim}-{case.distribution}"
        if not benchmark.enabled:
            benchmark.pedantic(synced)  # smoke: the function runs once, untimed by pytest-benchmark
            out.update(median_s=t_call, iqr_s=None, rounds=1, iterations=1, wall_median_s=t_call,
                       timer="smoke: mean of the warm-up calls, not a measurement")
        elif adapter.device == "cpu":
            iterations, rounds = self._plan(t_call)
            benchmark.pedantic(synced, rounds=rounds, iterations=iterations)
            st = benchmark.stats.stats
            out.update(median_s=st.median, iqr_s=st.iqr, rounds=st.rounds, iterations=iterations,
                       wall_median_s=st.median, timer="perf_counter, framework sync after every call",
                       samples=[float(x) for x in st.data])
            self.timed_s += sum(st.data) * iterations
        else:
            out.update(self._measure_gpu(benchmark, adapter, call, sync, t_call))
        with timing.memory_probe(adapter) as probe:
            synced()
        out["peak_mem_bytes"] = probe.extra_bytes
        return out

    def _plan(self, t_call: float) -> tuple[int, int]:
        p = self.profile
        return timing.plan_rounds(t_call, p.min_round_s, p.case_budget_s, p.min_rounds, p.max_rounds)

    def _measure_gpu(self, benchmark, adapter, call, sync, t_call: float) -> dict:
        """Wall time per call (K calls, one sync per round) from pytest-benchmark, device time
        from events around the same K calls."""
        iterations, rounds = self._plan(t_call)
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

    # --- self-check -------------------------------------------------------------------------
    def self_check_adapters(self) -> list[str]:
        """The part's CPU gathers whose timing path is checked against a bare loop (NumPy always)."""
        return ["numpy-gather"] + [i.slot.adapter.id for i in self.items.values()
                                   if i.slot is not None and i.slot.adapter is not None and i.case is not None
                                   and i.case.is_floor and i.case.pass_ == "forward"
                                   and i.slot.adapter.variant == "gather" and i.slot.adapter.device == "cpu"
                                   and i.slot.adapter.id != "numpy-gather"]

    def self_check(self, benchmark, repeat: int, adapter_id: str = "numpy-gather") -> dict:
        """The harness's median of a forward against a bare ``timeit`` loop of the same call (the
        framework's own synchronisation included), in the same process. The bare loop runs before
        and after the harness's measurement and its samples are pooled, so drift between the two
        (another framework's threads winding down, frequency) cannot pose as a harness error."""
        from backends.numpy_backend import NumpyGather

        self.start()
        adapter = NumpyGather() if adapter_id == "numpy-gather" else next(
            i.slot.adapter for i in self.items.values() if i.slot is not None and i.slot.adapter is not None
            and i.slot.adapter.id == adapter_id)
        self.switch_framework(f"self-check {adapter_id}")
        vocab, dim, n_ids = self.profile.self_check
        case = Case("forward", "float32", vocab, dim, n_ids, "uniform")
        index_dtype = index_dtype_for(adapter.declared.index_dtypes) or "int64"
        ids = self.inputs.ids(vocab, case.n_ids, "uniform").astype(index_dtype)
        bare = self._bare_loop(adapter, case, ids) if repeat == 0 and benchmark.enabled else None
        measured = self.measure(benchmark, adapter, case, ids, call_limit=False)
        entry = {"repeat": repeat, "adapter": adapter.id, **case.as_dict(), "index_dtype": index_dtype,
                 "harness_median_s": measured["median_s"], "harness_iqr_s": measured["iqr_s"],
                 "rounds": measured["rounds"], "iterations": measured["iterations"]}
        if bare is not None:
            per_call = bare.before + bare()  # the bare loop before and after the harness's rounds
            self.reference_s += sum(per_call) * bare.number
            entry.update(timeit_median_s=float(np.median(per_call)), timeit_min_s=min(per_call),
                         timeit_number=bare.number, timeit_repeat=len(per_call))
            ratio = entry["harness_median_s"] / entry["timeit_median_s"]
            entry["ok"] = SELF_CHECK_RATIO[0] < ratio < SELF_CHECK_RATIO[1]
            if not entry["ok"]:
                entry["problem"] = (f"{adapter.id}: harness/timeit ratio {ratio:.2f} outside {SELF_CHECK_RATIO} "
                                    f"({entry['harness_median_s']:.3g} s vs {entry['timeit_median_s']:.3g} s)")
        self.release()
        benchmark.extra_info.update(entry)
        self.self_checks.append(entry)
        return entry

    def _bare_loop(self, adapter, case: Case, ids_np: np.ndarray):
        """A timeit loop of ``sync(forward(w, ids))`` on prepared values; calling it returns 7
        per-call times. Its first 7 are taken at once and kept as ``.before``."""
        w = adapter.prepare_weights(self.inputs.weights(case.vocab, case.dim, case.dtype))
        ids = adapter.prepare_ids(ids_np)
        fn = adapter.compile(lambda w, ids: adapter.forward(w, ids))
        sync = adapter.synchronize
        sync(fn(w, ids))  # compile outside the loop
        timer = timeit.Timer(lambda: sync(fn(w, ids)))
        number, _ = timer.autorange()

        def sample() -> list[float]:
            return [t / number for t in timer.repeat(repeat=7, number=number)]

        sample.number = number
        sample.before = sample()
        return sample

    # --- the part record ----------------------------------------------------------------------
    def record_outcome(self, key: str, status: str, reason: str | None) -> None:
        item = self.items.get(key)
        if item is None:
            return
        result = self.results.setdefault(key, {"adapter": item.adapter_id,
                                               **(item.case.as_dict() if item.case else {})})
        result["status"] = status
        result["reason"] = reason

    def record(self, exitstatus: int | None = None) -> dict:
        for key in self.items:  # items that never reported (interrupted run)
            if key not in self.results or "status" not in self.results[key]:
                self.record_outcome(key, "error", "did not run (interrupted)")
        meta = machine.metadata()
        return {
            "schema": RECORD_SCHEMA, "run_id": self.run_id, "part": self.part,
            "profile": self.profile.name, "timed": self.profile.timed if self.timed is None else self.timed,
            "started": self.started,
            "finished": now(), "pytest_exit": exitstatus, "fatal": self.fatal,
            "machine": meta,
            "threads": {"requested": self.threads, "affinity": len(os.sched_getaffinity(0)),
                        "env": {k: os.environ[k] for k in machine.thread_env_names() if k in os.environ},
                        "frameworks": self.thread_report},
            "copy_bandwidth": self.copy_bw, "gemm_flops_per_s": self.gemm_flops,
            "load_average": {**self.load_average, "end": os.getloadavg()},
            "busy_share": self.busy_share,
            "timed_s": round(self.timed_s, 3), "self_check_timeit_s": round(self.reference_s, 3),
            "case_order": {"design": "tables in order, (adapter, case) pairs random within each table",
                           "seed": self.order_seed},
            "device_copy_bandwidth": self.device_info,
            "onehot_mem_budget": self.onehot_budget,
            "adapters": self.adapters,
            "cases": [self.results[k] for k in self.items if k in self.results],
            "self_check": self.self_checks,
        }

    def write(self, path: Path, exitstatus: int | None = None) -> None:
        atomic_write_json(Path(path), self.record(exitstatus))
