"""Timers, round planning, memory probe and copy bandwidth (harness.bench.timing / membw)."""

import numpy as np
import pytest
from fakes import FakeEvent

from harness.bench import membw, timing


def test_plan_rounds_reaches_the_minimum_round_time():
    iterations, rounds = timing.plan_rounds(10e-6, 1e-3, 0.1, 5, 100)
    assert iterations == 100 and iterations * 10e-6 >= 1e-3
    assert rounds == 100  # 0.1 s budget / 1 ms rounds
    # a slow call: one iteration, the minimum number of rounds even beyond the budget
    assert timing.plan_rounds(0.5, 1e-3, 0.1, 5, 100) == (1, 5)
    assert timing.plan_rounds(0.0, 1e-3, 0.1, 5, 100)[0] >= 1


def test_warm_up_runs_at_least_the_minimum_calls():
    calls = []
    per_call = timing.warm_up(lambda: calls.append(1), min_s=0.0, min_calls=3)
    assert len(calls) == 3 and per_call >= 0


def test_synced_every_syncs_once_per_round():
    synced, results = [], iter(range(100))
    call = timing.synced_every(lambda: next(results), synced.append, every=4)
    for _ in range(8):
        call()
    assert synced == [3, 7]  # the last result of each group of 4


def test_quartiles():
    assert timing.quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (3.0, 2.0)
    assert timing.quartiles([2.0]) == (2.0, 0.0)




def test_event_times_are_per_call_device_seconds():
    clock, synced = {"now": 0.0}, []

    def kernel():
        clock["now"] += 250e-6
        return clock["now"]

    times = timing.event_times(kernel, synced.append, lambda: FakeEvent(clock), rounds=5, iterations=4)
    assert times == pytest.approx([250e-6] * 5)
    assert len(synced) == 1  # one synchronisation after all rounds were queued


def test_event_factory_prefers_the_adapter_hook_and_has_none_on_cpu():
    class Cpu:
        framework, device = "numpy", "cpu"

    class WithHook(Cpu):
        device = "cuda"

        def device_timer_event(self):
            return "event"

    assert timing.event_factory(Cpu()) is None
    assert timing.event_factory(WithHook())() == "event"


def test_cpu_memory_probe_sees_a_large_temporary():
    size = 64 << 20
    with timing.CpuMemoryProbe() as probe:
        buf = np.ones(size // 8)
        buf.sum()
        del buf
    if probe.extra_bytes is None:
        pytest.skip("no /proc/self/clear_refs here")
    assert probe.extra_bytes >= 0.9 * size


def test_copy_bandwidth_counts_read_and_write():
    got = membw.copy_bandwidth(threads=2, nbytes=4 << 20, repeats=2)
    assert got["bytes_per_copy"] == 2 * got["buffer_bytes"] == 2 * (4 << 20)
    assert got["gbps"] > 0 and got["threads"] == 2
    # the median of the repeats, as the rows report medians; the best is kept beside it
    assert got["gbps"] == pytest.approx(got["bytes_per_copy"] / got["median_s"] / 1e9)
    assert got["best_gbps"] == pytest.approx(got["bytes_per_copy"] / got["best_s"] / 1e9)
    assert got["best_gbps"] >= got["gbps"]
    assert membw.default_copy_bytes(32 << 20) == 256 << 20
    assert membw.default_copy_bytes(None) == 256 << 20


def test_gemm_rate_is_positive():
    assert membw.gemm_flops_per_s(size=64, repeats=1) > 0
