"""The in-process side of a benchmark part: what ``tests/bench`` runs for each case.

One ``BenchSession`` lives in the pytest process of a part. It loads the adapters from the
registry and expands them into items (collection), probes the machine once (threads, copy
bandwidth, GEMM rate, the device), decides per item whether and on which inputs it runs,
hands the timing to ``measure.CaseTimer`` and the method check to ``selfcheck.SelfCheck``,
and finally writes the part record that ``harness.bench run`` stores inside
``bench-<part>.json``.
"""

from __future__ import annotations

import datetime as _dt
import gc
import os
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import machine
from harness.bench import membw, timing
from harness.bench.measure import CaseSkipped, CaseTimer, PreparedTables
from harness.bench.selfcheck import SELF_CHECKED, SelfCheck, checked_adapters
from harness.bench.sweep import (
    DEFAULT_ONEHOT_BUDGET,
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

__all__ = ["BenchSession", "CaseSkipped", "Item", "apply_thread_settings"]

RECORD_SCHEMA = "embedding-harness/bench-part/1"


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
    fatal: str | None = None
    started: str = ""
    copy_bw: dict | None = None
    gemm_flops: float | None = None
    thread_report: dict | None = None
    load_average: dict = field(default_factory=dict)
    device_info: dict | None = None  # GPU copy bandwidth and L2, when CUDA adapters run
    busy_share: float | None = None  # CPU share others used on our cores while we idled at start
    l3_bytes: int | None = None

    def __post_init__(self):
        self.threads = self.threads or len(os.sched_getaffinity(0))
        # Room for the largest table and upstream gradients of a profile, so that the next adapter
        # finds them instead of drawing gigabytes again.
        self.inputs = Inputs(capacity_bytes=max(2 * GiB, 4 * self.profile.max_output_bytes))
        self.guard = OneHotTimeGuard(None, self.profile.max_call_s)
        self.tables = PreparedTables(self.inputs)
        self.timer = CaseTimer(self.profile, self.tables, self.guard)
        self.checks = SelfCheck(self.timer, self.inputs, self.profile.self_check)
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
        self.tables.switch_framework(adapter.framework_label)
        count = stream_batches(case, self._cache_bytes(adapter))
        batches = [ids_np, *self.inputs.id_batches(case.vocab, case.n_ids, case.distribution, count)[1:]]
        batches = [b.astype(index_dtype) for b in batches]
        if case.pooling:  # a bag adapter takes the same ids cut into bags of L
            batches = [bags_of(b, case.pooling) for b in batches]
        measured = self.timer.measure(benchmark, adapter, case, batches[0], batches[1:])
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

    # --- self-check -------------------------------------------------------------------------
    def self_check_adapters(self) -> list[str]:
        """The part's CPU gathers whose timing path is checked against a bare loop (NumPy always)."""
        return checked_adapters(self.items.values())

    def self_check(self, benchmark, repeat: int, adapter_id: str = SELF_CHECKED) -> dict:
        """One self-check (selfcheck.SelfCheck) of ``adapter_id``, with the tables released
        before and after, as between two frameworks."""
        from backends.numpy_backend import NumpyGather

        self.start()
        adapter = NumpyGather() if adapter_id == SELF_CHECKED else next(
            i.slot.adapter for i in self.items.values() if i.slot is not None and i.slot.adapter is not None
            and i.slot.adapter.id == adapter_id)
        self.tables.switch_framework(f"self-check {adapter_id}")
        entry = self.checks.run(benchmark, repeat, adapter)
        self.tables.release()
        benchmark.extra_info.update(entry)
        return entry

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
            "profile": self.profile.name,
            "timed": self.profile.timed if self.timer.timed is None else self.timer.timed,
            "started": self.started,
            "finished": now(), "pytest_exit": exitstatus, "fatal": self.fatal,
            "machine": meta,
            "threads": {"requested": self.threads, "affinity": len(os.sched_getaffinity(0)),
                        "env": {k: os.environ[k] for k in machine.thread_env_names() if k in os.environ},
                        "frameworks": self.thread_report},
            "copy_bandwidth": self.copy_bw, "gemm_flops_per_s": self.gemm_flops,
            "load_average": {**self.load_average, "end": os.getloadavg()},
            "busy_share": self.busy_share,
            "timed_s": round(self.timer.timed_s, 3), "self_check_timeit_s": round(self.checks.reference_s, 3),
            "case_order": {"design": "tables in order, (adapter, case) pairs random within each table",
                           "seed": self.order_seed},
            "device_copy_bandwidth": self.device_info,
            "onehot_mem_budget": self.onehot_budget,
            "adapters": self.adapters,
            "cases": [self.results[k] for k in self.items if k in self.results],
            "self_check": self.checks.entries,
        }

    def write(self, path: Path, exitstatus: int | None = None) -> None:
        atomic_write_json(Path(path), self.record(exitstatus))
