"""Timers, round planning, memory probes, busy cores and copy bandwidth (harness.bench.timing /
membw), on fake clocks, fake /proc files and fake frameworks: every duration a test expects is
one it chose, so the assertions are exact."""

import math
import statistics
import sys
import time
import types
from dataclasses import replace

import numpy as np
import pytest
from fakes import FakeBenchmark, FakeClock, FakeEvent, SequenceClock, fake_tensorflow, fake_torch

from harness.bench import measure, membw, selfcheck, suite, timing
from harness.bench.sweep import Case, get_profile


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(timing, "perf_counter", fake)
    return fake


# ---- one call, warm-up, rounds -----------------------------------------------------------------


def test_timed_call_is_the_call_and_its_sync(clock):
    seen = []

    def fn():
        clock.advance(0.5)
        return "out"

    def sync(value):
        seen.append(value)
        clock.advance(0.25)

    assert timing.timed_call(fn, sync) == 0.75
    assert seen == ["out"]  # the sync waits on what the call returned


def _ticking(clock, seconds):
    calls = []

    def call():
        calls.append(1)
        clock.advance(seconds)

    return call, calls


def _slowing_down(clock, durations):
    """A call whose n-th run takes ``durations[n]`` seconds (the last one ever after)."""
    calls = []

    def call():
        clock.advance(durations[min(len(calls), len(durations) - 1)])
        calls.append(1)

    return call, calls


def test_steady_calls_warm_up_for_two_windows_and_return_seconds_per_call(clock):
    call, calls = _ticking(clock, 0.25)
    assert timing.warm_up(call, min_s=0.0, max_s=100.0) == 0.25
    assert len(calls) == 2 * timing.SETTLE_WINDOW  # one window against the one before it


def test_warm_up_goes_on_while_the_calls_get_faster_and_returns_the_settled_time(clock):
    # 5 slow calls (a fresh table), 5 settling, then steady: two steady windows are needed.
    durations = [8.0] * 5 + [2.0, 1.5, 1.2, 1.1, 1.0] + [1.0]
    call, calls = _slowing_down(clock, durations)
    assert timing.warm_up(call, min_s=0.0, max_s=1000.0) == 1.0  # the last window's median, not the mean
    # Checked after every call: after 15 the last 5 (median 1.0) are still 17 % faster than the 5
    # before (median 1.2); after 16, only 9 % faster than [1.5, 1.2, 1.1, 1.0, 1.0].
    assert len(calls) == 16


def test_a_window_less_than_the_gain_faster_counts_as_settled(clock):
    gain = 1 - timing.SETTLE_GAIN
    call, calls = _slowing_down(clock, [1.0] * 5 + [gain])
    timing.warm_up(call, min_s=0.0, max_s=1000.0)
    assert len(calls) == 10  # exactly (1 - gain) x the window before: settled
    call, calls = _slowing_down(clock, [1.0] * 5 + [0.5 * gain] * 5 + [0.5 * gain])
    timing.warm_up(call, min_s=0.0, max_s=1000.0)
    # Twice as fast: not settled until the faster calls are the median of the window before too.
    assert len(calls) == 13


def test_warm_up_runs_at_least_the_minimum_time_even_when_settled(clock):
    call, calls = _ticking(clock, 0.25)
    timing.warm_up(call, min_s=5.0, max_s=100.0)
    assert len(calls) == 20  # 20 x 0.25 = 5.0 s: reached, no further call
    call, calls = _ticking(clock, 0.25)
    timing.warm_up(call, min_s=math.nextafter(5.0, 6.0), max_s=100.0)
    assert len(calls) == 21  # a hair beyond 5.0 s needs one more


def test_warm_up_stops_at_its_maximum_time_even_when_the_calls_still_get_faster(clock):
    call, calls = _slowing_down(clock, [2.0 ** -n for n in range(100)])  # each call twice as fast
    timing.warm_up(call, min_s=0.0, max_s=1.5)
    assert len(calls) == 2  # 1 + 0.5 = 1.5 s
    call, calls = _ticking(clock, 10.0)
    assert timing.warm_up(call, min_s=0.0, max_s=1.0) == 10.0  # one call at least, however slow
    assert len(calls) == 1


def test_warm_up_caps_the_calls(clock):
    call, calls = _ticking(clock, 0.0)  # calls that take no time never reach min_s
    assert timing.warm_up(call, min_s=1.0, max_s=2.0) == 0.0
    assert len(calls) == 10_000
    call, calls = _ticking(clock, 0.0)
    timing.warm_up(call, min_s=1.0, max_s=2.0, max_calls=7)
    assert len(calls) == 7


def test_settled_needs_two_windows():
    assert not timing.settled([1.0] * (2 * timing.SETTLE_WINDOW - 1))
    assert timing.settled([1.0] * (2 * timing.SETTLE_WINDOW))
    assert timing.settled([1.0] * 3 + [2.0] * 3, window=3)  # slower is settled: only speed-ups wait


def test_settled_is_the_last_window_against_the_one_before_it():
    edge = (1 - timing.SETTLE_GAIN) * 20.0
    assert timing.settled([20.0] * 5 + [edge] * 5)  # exactly the gain faster: settled
    assert not timing.settled([20.0] * 5 + [math.nextafter(edge, 0.0)] * 5)
    # Only the last two windows count: ten faster calls before them change nothing.
    assert timing.settled([1.0] * 15 + [10.0] * 10)


def test_plan_rounds_reaches_the_minimum_round_time():
    t = 2**-10  # seconds per call
    # 2**-7 s rounds need 8 calls; a budget of 10 such rounds: (8 iterations, 10 rounds)
    assert timing.plan_rounds(t, 2**-7, 10 * 2**-7, 1, 100) == (8, 10)
    # a round a hair longer than 8 calls needs 9 (ceil); 10 * 2**-7 s / (9 * 2**-10 s) = 8.9: 8 rounds
    assert timing.plan_rounds(t, 2**-7 + 2**-20, 10 * 2**-7, 1, 100) == (9, 8)
    # a call slower than a round: one iteration
    assert timing.plan_rounds(0.5, 1e-3, 0.1, 5, 100) == (1, 5)
    assert timing.plan_rounds(t, 0.0, 10 * 2**-10, 1, 100) == (1, 10)  # no minimum round: one call


def test_plan_rounds_clamps_the_rounds_at_both_ends():
    t, round_s, budget = 2**-10, 2**-7, 10 * 2**-7  # the budget fits exactly 10 rounds
    assert timing.plan_rounds(t, round_s, budget, 10, 100)[1] == 10  # minimum equal to the fit
    assert timing.plan_rounds(t, round_s, budget, 11, 100)[1] == 11  # minimum beyond it wins
    assert timing.plan_rounds(t, round_s, budget, 1, 10)[1] == 10  # maximum equal to the fit
    assert timing.plan_rounds(t, round_s, budget, 1, 9)[1] == 9  # maximum below it wins


def test_plan_rounds_floors_a_zero_call_time_at_a_nanosecond():
    # 1e-3 s / 1e-9 s = 1e6 iterations; 0.5 s / (1e6 x 1e-9 s) = 500 rounds
    assert timing.plan_rounds(0.0, 1e-3, 0.5, 1, 10**9) == (1_000_000, 500)
    assert timing.plan_rounds(-1.0, 1e-3, 0.5, 1, 10**9) == (1_000_000, 500)


def test_synced_every_syncs_once_per_round():
    synced, results = [], iter(range(100))
    call = timing.synced_every(lambda: next(results), synced.append, every=4)
    for _ in range(8):
        call()
    assert synced == [3, 7]  # the last result of each group of 4
    every_call = timing.synced_every(lambda: "x", synced.append, every=1)
    every_call()
    assert synced == [3, 7, "x"]


def test_synced_call_syncs_every_call():
    synced = []
    call = timing.synced_call(lambda: len(synced), synced.append)
    call()
    call()
    assert synced == [0, 1]


@pytest.mark.parametrize(("samples", "expected"), [
    ([1.0, 2.0, 3.0, 4.0, 5.0], (3.0, 2.0)),  # inclusive quartiles 2 and 4 (exclusive: 1.5, 4.5)
    ([4.0, 1.0, 3.0, 2.0], (2.5, 1.5)),  # order does not matter; q1 = 1.75, q3 = 3.25
    ([1.0, 3.0], (2.0, 1.0)),  # two samples are enough for quartiles: q1 = 1.5, q3 = 2.5
    ([2.0], (2.0, 0.0)),  # one sample: itself, no spread
])
def test_quartiles(samples, expected):
    assert timing.quartiles(samples) == expected


def test_quartiles_of_nothing():
    median, iqr = timing.quartiles([])
    assert math.isnan(median) and iqr == 0.0


# ---- device events -------------------------------------------------------------------------


def test_event_times_are_per_call_device_seconds():
    clock, synced, events = {"now": 0.0}, [], []
    kernel_s = iter([0.25, 0.75, 0.5, 0.5, 1.0, 2.0])  # 3 rounds of 2 calls: 1 s, 1 s, 3 s

    def kernel():
        clock["now"] += next(kernel_s)
        return clock["now"]

    def make_event():
        events.append(FakeEvent(clock))
        return events[-1]

    times = timing.event_times(kernel, synced.append, make_event, rounds=3, iterations=2)
    assert times == [0.5, 0.5, 1.5]
    assert synced == [5.0]  # one synchronisation, on the last output, after all rounds were queued
    assert len(events) == 6 and [e.synchronized for e in events] == [0, 0, 0, 0, 0, 1]  # the last end event


def test_event_factory_prefers_the_adapter_hook_then_its_framework_runtime_and_has_none_on_cpu(monkeypatch):
    from backends import jax_backend, torch_backend
    from harness import registry

    class Cpu:
        framework, device, runtime = "numpy", "cpu", None

    class WithHook(Cpu):
        device = "cuda"

        def device_timer_event(self):
            return "event"

    class TorchCuda:
        framework, device, device_timer_event, runtime = "torch", "cuda", None, torch_backend.RUNTIME

    class KerasOnTorch:  # the runtime the registry gives Keras-on-torch adapters
        framework, device, runtime = "keras", "cuda", registry.framework_of("keras-torch-gather").runtime

    class JaxCuda:
        framework, device, runtime = "jax", "cuda", jax_backend.RUNTIME

    monkeypatch.setitem(sys.modules, "torch", fake_torch())  # whatever torch this machine has, or none
    assert timing.event_factory(Cpu()) is None
    assert timing.event_factory(WithHook())() == "event"
    assert timing.event_factory(TorchCuda())() == ("fake-cuda-event", True)  # torch's events, timing on
    assert timing.event_factory(KerasOnTorch())() == ("fake-cuda-event", True)
    assert timing.event_factory(JaxCuda()) is None
    monkeypatch.setattr(KerasOnTorch, "runtime", registry.framework_of("keras-jax-gather").runtime)
    assert timing.event_factory(KerasOnTorch()) is None
    monkeypatch.setattr(KerasOnTorch, "runtime", None)  # an adapter no framework registered
    assert timing.event_factory(KerasOnTorch()) is None
    monkeypatch.setattr(TorchCuda, "device", "cpu")  # CPU rows are timed by the wall clock
    assert timing.event_factory(TorchCuda()) is None

    class EventsEverywhere:  # a runtime that would make events for any device, the CPU included
        @staticmethod
        def device_event(device):
            return lambda: device

    class CpuWithRuntime:
        framework, device, runtime = "acme", "cpu", EventsEverywhere

    class WithoutRuntime:  # a third party's adapter that never heard of runtimes
        framework, device = "acme", "cuda"

    assert timing.event_factory(CpuWithRuntime()) is None
    assert timing.event_factory(WithoutRuntime()) is None
    assert isinstance(timing.memory_probe(WithoutRuntime()), timing.NoMemoryProbe)


# ---- memory ------------------------------------------------------------------------------


class FakeProc:
    """``timing.Path`` stand-in over a dict of file contents; writes are recorded."""

    def __init__(self, files: dict, writable: bool = True):
        self.files, self.writable, self.writes = files, writable, []

    def __call__(self, path):
        proc = self

        class _Path:
            def read_text(self):
                if str(path) not in proc.files:
                    raise OSError(f"no {path}")
                return proc.files[str(path)]

            def write_text(self, text):
                if not proc.writable:
                    raise OSError("read-only")
                proc.writes.append((str(path), text))

        return _Path()


def _status(rss_kib: int, hwm_kib: int) -> str:
    return f"Name:\tpython\nVmHWM:\t{hwm_kib:>8} kB\nVmRSS:\t{rss_kib:>8} kB\nThreads:\t1\n"


def test_cpu_memory_probe_is_peak_rss_during_the_call_minus_rss_before(monkeypatch):
    proc = FakeProc({"/proc/self/status": _status(2048, 9000)})
    monkeypatch.setattr(timing, "Path", proc)
    with timing.CpuMemoryProbe() as probe:
        proc.files["/proc/self/status"] = _status(2100, 5120)  # the high-water mark after the reset
    assert probe.extra_bytes == 3_145_728  # (5120 - 2048) KiB
    assert proc.writes == [("/proc/self/clear_refs", "5")]  # the mark was reset first


def test_cpu_memory_probe_knows_no_peak_before_the_call_ended(monkeypatch):
    monkeypatch.setattr(timing, "Path", FakeProc({"/proc/self/status": _status(2048, 9000)}))
    probe = timing.CpuMemoryProbe().__enter__()
    assert probe.extra_bytes is None


def test_freed_heap_goes_back_to_the_os_through_glibc_before_the_call(monkeypatch):
    trimmed = []

    class Libc:
        def __init__(self, name):
            self.name = name

        def malloc_trim(self, pad):
            trimmed.append((self.name, pad))

    monkeypatch.setattr(timing.ctypes, "CDLL", Libc)
    monkeypatch.setattr(timing, "Path", FakeProc({"/proc/self/status": _status(2048, 2048)}))
    with timing.CpuMemoryProbe():
        assert trimmed == [("libc.so.6", 0)]  # everything freed above the heap's start


@pytest.mark.parametrize("probe", [
    lambda: timing.CpuMemoryProbe(),
    lambda: timing.NoMemoryProbe(),
])
def test_memory_probes_let_the_calls_errors_through(probe):
    def fails():
        raise ZeroDivisionError("in the call")

    with pytest.raises(ZeroDivisionError, match="in the call"):
        with probe():
            fails()


def test_cpu_memory_probe_never_reports_less_than_nothing(monkeypatch):
    proc = FakeProc({"/proc/self/status": _status(2048, 2048)})
    monkeypatch.setattr(timing, "Path", proc)
    with timing.CpuMemoryProbe() as probe:
        proc.files["/proc/self/status"] = _status(1024, 1024)  # freed memory during the call
    assert probe.extra_bytes == 0
    with timing.CpuMemoryProbe() as same:
        pass  # peak equal to before: 0 extra bytes, not None
    assert same.extra_bytes == 0


@pytest.mark.parametrize("files, writable", [
    ({"/proc/self/status": _status(2048, 4096)}, False),  # high-water mark cannot be reset
    ({}, True),  # no /proc
    ({"/proc/self/status": "VmRSS:\tlots kB\nVmHWM:\t4096 kB\n"}, True),  # unreadable number
])
def test_cpu_memory_probe_says_none_where_it_cannot_measure(monkeypatch, files, writable):
    monkeypatch.setattr(timing, "Path", FakeProc(files, writable))
    with timing.CpuMemoryProbe() as probe:
        pass
    assert probe.extra_bytes is None


def test_cpu_memory_probe_sees_a_large_temporary():
    """On this machine's real /proc: a 64 MiB temporary must show (skipped where /proc lacks it)."""
    size = 64 << 20
    with timing.CpuMemoryProbe() as probe:
        buf = np.ones(size // 8)
        buf.sum()
        del buf
    if probe.extra_bytes is None:
        pytest.skip("no /proc/self/clear_refs here")
    assert probe.extra_bytes >= 0.9 * size


def test_torch_runtime_memory_probe_reads_the_peak_after_a_reset(monkeypatch):
    from backends.torch_backend import RUNTIME

    torch = fake_torch(allocated=1000, peak=5000)
    monkeypatch.setitem(sys.modules, "torch", torch)
    assert RUNTIME.memory_probe("cpu") is None
    with RUNTIME.memory_probe("cuda") as probe:
        pass
    assert probe.extra_bytes == 4000
    assert torch.calls == ["synchronize", "reset_peak_memory_stats", "memory_allocated",
                           "synchronize", "max_memory_allocated"]
    monkeypatch.setitem(sys.modules, "torch", fake_torch(allocated=5000, peak=4000))
    with RUNTIME.memory_probe("cuda") as probe:
        pass
    assert probe.extra_bytes == 0


def test_tensorflow_runtime_memory_probe_reads_the_allocator_peak_and_jax_has_none(monkeypatch):
    from backends import jax_backend, tensorflow_backend

    tf = fake_tensorflow(current=300, peak=1300)
    monkeypatch.setitem(sys.modules, "tensorflow", tf)
    with tensorflow_backend.RUNTIME.memory_probe("cuda") as probe:
        pass
    assert probe.extra_bytes == 1000
    assert tf.calls == [("reset_memory_stats", "GPU:0"), ("get_memory_info", "GPU:0"), ("get_memory_info", "GPU:0")]
    assert jax_backend.RUNTIME.memory_probe("cuda") is None
    adapter = types.SimpleNamespace(framework="jax", device="cuda", runtime=jax_backend.RUNTIME)
    with timing.memory_probe(adapter) as probe:
        pass
    assert isinstance(probe, timing.NoMemoryProbe) and probe.extra_bytes is None


def test_memory_probe_by_device(monkeypatch):
    from backends import tensorflow_backend

    monkeypatch.setitem(sys.modules, "tensorflow", fake_tensorflow(current=0, peak=0))

    class Adapter:
        framework, device, runtime = "tensorflow", "cpu", tensorflow_backend.RUNTIME

    assert isinstance(timing.memory_probe(Adapter()), timing.CpuMemoryProbe)
    Adapter.device = "cuda"
    assert isinstance(timing.memory_probe(Adapter()), tensorflow_backend._GpuMemoryProbe)
    Adapter.runtime = None
    assert isinstance(timing.memory_probe(Adapter()), timing.NoMemoryProbe)
    Adapter.device_memory_probe = lambda self: "own probe"
    assert timing.memory_probe(Adapter()) == "own probe"
    Adapter.device = "cpu"  # on the CPU the harness's own probe, hook or not
    assert isinstance(timing.memory_probe(Adapter()), timing.CpuMemoryProbe)


# ---- other processes on our cores ----------------------------------------------------------

PROC_STAT = """\
cpu  5000 0 5000 50000 0 0 0 0 0 0
cpu0 100 5 50 800 40 3 2 7 11 13
cpu1 9000 0 0 1 0 0 0 0
cpu2 10 0 10 80 0 0 0 0
intr 123456
"""


def test_cpu_times_sum_the_chosen_cores(monkeypatch):
    monkeypatch.setattr(timing, "Path", FakeProc({"/proc/stat": PROC_STAT}))
    # cpu0: total of the first 8 fields 1007 (guest time is already in user), idle 800 + iowait 40:
    # busy 167; cpu2: total 100, busy 20. cpu1 is not ours, "cpu" is the sum line.
    assert timing._cpu_times({0, 2}) == (187, 1107)
    assert timing._cpu_times({1}) == (9000, 9001)
    assert timing._cpu_times(set()) == (0, 0)


def test_cpu_times_of_an_old_kernel_and_of_no_proc(monkeypatch):
    monkeypatch.setattr(timing, "Path", FakeProc({"/proc/stat": "cpu0 10 0 10 80\n"}))  # no iowait field
    assert timing._cpu_times({0}) == (20, 100)
    monkeypatch.setattr(timing, "Path", FakeProc({"/proc/stat": "cpu0 10 0 10 80 5\n"}))  # iowait, the 5th
    assert timing._cpu_times({0}) == (20, 105)
    monkeypatch.setattr(timing, "Path", FakeProc({}))
    assert timing._cpu_times({0}) is None
    monkeypatch.setattr(timing, "Path", FakeProc({"/proc/stat": "cpu0 10 x 10 80\n"}))
    assert timing._cpu_times({0}) is None


def _busy(monkeypatch, before, after):
    readings, slept, asked = [before, after], [], []

    def cpu_times(cores):
        asked.append(cores)
        return readings.pop(0)

    monkeypatch.setattr(timing, "_cpu_times", cpu_times)
    monkeypatch.setattr(timing.time, "sleep", slept.append)
    monkeypatch.setattr(timing.os, "sched_getaffinity", lambda pid: {0, 2} if pid == 0 else {99})
    return timing.busy_share(), slept, asked


def test_busy_share_is_others_busy_time_over_our_cores_time(monkeypatch):
    share, slept, asked = _busy(monkeypatch, (100, 1000), (350, 2000))
    assert share == 0.25  # 250 busy of 1000 jiffies
    assert slept == [0.5] and asked == [{0, 2}, {0, 2}]  # half a second by default, this process's cores


@pytest.mark.parametrize("before, after", [
    ((100, 1000), (100, 1000)),  # no jiffy passed: no share
    ((100, 1000), (90, 999)),  # the counters went back
    (None, (350, 2000)),
    ((100, 1000), None),
])
def test_busy_share_is_none_when_nothing_can_be_said(monkeypatch, before, after):
    assert _busy(monkeypatch, before, after)[0] is None


def test_busy_share_one_jiffy_is_enough(monkeypatch):
    assert _busy(monkeypatch, (100, 1000), (101, 1001))[0] == 1.0


# ---- the harness's self-check and per-call limit --------------------------------------------


def _session(profile="quick", **changes):
    session = suite.BenchSession(profile=replace(get_profile(profile), **changes), threads=1)
    session.copy_bw, session._ready = {"gbps": 1.0}, True
    return session


@pytest.mark.parametrize(("harness_s", "ok"), [
    (0.25, False),  # harness/timeit ratio exactly 0.25: outside (the range is open)
    (math.nextafter(0.25, 1.0), True),
    (1.0, True),
    (math.nextafter(4.0, 0.0), True),
    (4.0, False),
])
def test_self_check_ratio_bounds(harness_s, ok):
    got = selfcheck.SelfCheck.compare([harness_s] * 5, [1.0] * 5, iterations=10)
    assert got["ratio"] == harness_s and got["ok"] is ok
    assert got["timeit_median_s"] == 1.0 and got["timeit_repeat"] == 5 and got["timeit_number"] == 10


def test_a_machine_whose_speed_wanders_moves_both_sides_of_each_pair_and_passes():
    # The CI failure: the harness's rounds fell in a fast spell, most bare samples in slow ones
    # (pooled medians 0.6 ms against 3.2 ms). Paired round by round, the spells cancel.
    speed = [1.0] * 3 + [5.0] * 7 + [1.2] * 2 + [5.5] * 7  # seconds per call at each turn
    got = selfcheck.SelfCheck.compare([0.9 * s for s in speed], speed, iterations=1)
    assert got["ok"] and got["ratio"] == pytest.approx(0.9)


def test_a_harness_slower_in_every_pair_fails_however_the_machine_wanders():
    speed = [1.0, 5.0, 2.0, 4.5, 1.0, 3.0, 5.0]
    got = selfcheck.SelfCheck.compare([4.5 * s for s in speed], speed, iterations=1)
    assert not got["ok"] and got["ratio"] == pytest.approx(4.5)
    assert got["timeit_min_s"] == 1.0 and got["timeit_samples_s"] == speed


def test_pairs_stop_at_the_last_round_and_a_bare_loop_that_never_ran_is_an_error():
    # pytest-benchmark runs one more call and teardown after its last round when iterations > 1.
    got = selfcheck.SelfCheck.compare([2.0, 2.0], [1.0, 1.0, 100.0], iterations=2)
    assert got["ratio"] == 2.0 and got["timeit_repeat"] == 2 and got["timeit_samples_s"] == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="bare loop ran 1 blocks for 2 harness rounds"):
        selfcheck.SelfCheck.compare([2.0, 2.0], [1.0], iterations=2)


def _paired_self_check(monkeypatch, harness_delay_s=0.0):
    """The self-check of NumPy's gather end to end (real clocks, real calls): the harness's rounds
    through CaseTimer and the fake fixture, the bare loop as its teardown. ``harness_delay_s``
    plants a fault in the harness's timing path: every timed call sleeps that long."""
    monkeypatch.setattr(measure, "SETTLE_S", 0)
    if harness_delay_s:
        synced_call = timing.synced_call

        def slow_synced_call(fn, sync):
            inner = synced_call(fn, sync)

            def call():
                time.sleep(harness_delay_s)
                inner()
            return call

        monkeypatch.setattr(timing, "synced_call", slow_synced_call)
    session = _session("tiny", self_check=(256, 8, 64))
    bench = FakeBenchmark()
    return session, bench, session.self_check(bench, repeat=0)


def test_the_bare_loop_takes_turns_with_the_harnesss_rounds(monkeypatch):
    session, bench, entry = _paired_self_check(monkeypatch)
    (rounds, iterations, _), = bench.calls
    assert entry["paired"] and entry["timeit_repeat"] == rounds == len(entry["harness_samples_s"])
    assert entry["timeit_number"] == iterations and len(entry["timeit_samples_s"]) == rounds
    assert entry["ratio"] == pytest.approx(statistics.median(
        h / b for h, b in zip(entry["harness_samples_s"], entry["timeit_samples_s"], strict=True)))
    # every block the bare loop ran is measuring time, the one after the last round included
    assert session.checks.reference_s >= sum(entry["timeit_samples_s"]) * iterations


def test_a_fault_planted_in_the_harnesss_timing_path_fails_the_self_check(monkeypatch):
    _, _, entry = _paired_self_check(monkeypatch, harness_delay_s=0.002)  # the gather itself: microseconds
    assert not entry["ok"] and entry["ratio"] > 4
    assert entry["problem"].startswith("numpy-gather: harness/timeit ratio")
    assert "paired rounds" in entry["problem"]


def test_a_pytest_benchmark_without_teardown_is_named_with_the_fix(monkeypatch):
    class OldBenchmark(FakeBenchmark):
        def pedantic(self, target, rounds=1, iterations=1, warmup_rounds=0):  # before pytest-benchmark 5.2
            return super().pedantic(target, rounds, iterations, warmup_rounds)

    monkeypatch.setattr(measure, "SETTLE_S", 0)
    session = _session("tiny", self_check=(256, 8, 64))
    with pytest.raises(RuntimeError, match=r"needs pytest-benchmark >= 5.2 .* pip install 'pytest-benchmark>=5.2'"):
        session.self_check(OldBenchmark(), repeat=0)


def _one_call(monkeypatch, seconds_per_call, max_call_s):
    from backends.numpy_backend import NumpyGather

    monkeypatch.setattr(timing, "perf_counter", FakeClock(step=seconds_per_call))  # every reading moves it on
    session = _session("smoke", max_call_s=max_call_s)
    case = Case("forward", "float32", 8, 4, 16, "uniform")
    return session.timer.measure(FakeBenchmark(), NumpyGather(), case, np.arange(16, dtype=np.int32) % 8)


def test_a_call_as_slow_as_the_limit_is_measured(monkeypatch):
    out = _one_call(monkeypatch, 0.5, max_call_s=0.5)
    assert out["compile_s"] == 0.5 and out["rounds"] >= 1


def test_a_call_beyond_the_limit_is_skipped_with_the_reason(monkeypatch):
    with pytest.raises(suite.CaseSkipped, match=r"one call took 0.5 s > 0.49 s per-call limit of profile smoke"):
        _one_call(monkeypatch, 0.5, max_call_s=0.49)


def test_the_self_check_is_measured_however_slow_one_call_is(monkeypatch):
    # The self-check's case is fixed by the profile: a slow sample on a loaded machine is timed, not skipped.
    monkeypatch.setattr(timing, "perf_counter", FakeClock(step=0.5))
    session = _session("smoke", max_call_s=0.49, timed=True)
    monkeypatch.setattr(measure, "SETTLE_S", 0)
    entry = session.self_check(FakeBenchmark(), repeat=1)
    assert entry["adapter"] == "numpy-gather" and entry["harness_median_s"] > 0


def test_the_self_checks_rounds_span_a_longer_window_than_a_cases_and_are_kept(monkeypatch):
    # tiny's own budget is 10 rounds of 0.01 s in all: one stall of the machine would decide the
    # median. The self-check's rounds span 0.2 s (200 rounds of a 1 ms call), a case's do not.
    from backends.numpy_backend import NumpyGather

    monkeypatch.setattr(timing, "perf_counter", FakeClock(step=2**-10))  # every call "takes" ~1 ms
    monkeypatch.setattr(measure, "SETTLE_S", 0)
    session = _session("tiny", self_check=(256, 8, 64))
    bench = FakeBenchmark()
    entry = session.self_check(bench, repeat=1)
    assert bench.calls == [(200, 1, 0)] and entry["rounds"] == 200  # 0.2 s would fit 204
    assert len(entry["harness_samples_s"]) == 200
    bench = FakeBenchmark()
    case = Case("forward", "float32", 8, 4, 16, "uniform")
    session.timer.measure(bench, NumpyGather(), case, np.arange(16, dtype=np.int32) % 8)
    assert bench.calls == [(10, 1, 0)]  # 0.01 s of ~1 ms calls


def test_the_warm_up_may_cost_at_most_its_share_of_the_cases_budget(monkeypatch):
    from backends.numpy_backend import NumpyGather

    seen = []
    monkeypatch.setattr(timing, "warm_up", lambda call, min_s, max_s: seen.append((min_s, max_s)) or 1e-3)
    session = _session("full")  # 0.5 s of rounds per case, warm-up at least 20 ms
    case = Case("forward", "float32", 8, 4, 16, "uniform")
    session.timer.measure(FakeBenchmark(), NumpyGather(), case, np.arange(16, dtype=np.int32) % 8)
    assert seen == [(0.02, 0.125)]
    session = _session("full", case_budget_s=0.04)
    session.timer.measure(FakeBenchmark(), NumpyGather(), case, np.arange(16, dtype=np.int32) % 8)
    assert seen[-1] == (0.02, 0.02)  # never below its minimum


def test_a_pass_the_adapter_cannot_time_is_skipped_with_its_reason():
    from backends.numpy_backend import NumpyGather
    from harness.registry import Slot

    adapter = NumpyGather()
    adapter.untimed_passes = {"forward_backward": "reads its gradient from an optimizer step"}
    session = _session("smoke")
    case = Case("forward_backward", "float32", 8, 4, 16, "uniform")
    session.items["k"] = suite.Item("k", adapter.id, case, Slot(adapter.id, adapter))
    with pytest.raises(suite.CaseSkipped, match="reads its gradient from an optimizer step"):
        session.run_item(FakeBenchmark(), "k")


# ---- machine rates -------------------------------------------------------------------------


def test_copy_bandwidth_is_the_median_of_the_repeats_counting_read_and_write(monkeypatch):
    # three copies taking 2**-8, 2**-9 and 2**-7 s: median 2**-8, best 2**-9
    clock = SequenceClock([1.0, 1.0 + 2**-8, 2.0, 2.0 + 2**-9, 3.0, 3.0 + 2**-7])
    monkeypatch.setattr(membw, "time", types.SimpleNamespace(perf_counter=clock))
    got = membw.copy_bandwidth(threads=2, nbytes=4 << 20, repeats=3)
    # 4 MiB read + 4 MiB written = 8388608 bytes; / 2**-8 s = 2**31 B/s = 2.147483648 GB/s
    assert got["bytes_per_copy"] == 8_388_608 and got["buffer_bytes"] == 4_194_304
    assert got["median_s"] == 2**-8 and got["best_s"] == 2**-9
    assert got["gbps"] == pytest.approx(2.147483648, rel=1e-12)
    assert got["best_gbps"] == pytest.approx(4.294967296, rel=1e-12)
    assert (got["threads"], got["repeats"]) == (2, 3)


def test_copy_bandwidth_really_copies():
    got = membw.copy_bandwidth(threads=0, nbytes=1 << 20, repeats=1)  # threads < 1: one thread
    assert got["threads"] == 1 and got["bytes_per_copy"] == 2 << 20


def test_default_copy_buffer_is_four_l3s_but_at_least_256_mib():
    mib = 1 << 20
    assert membw.default_copy_bytes(128 * mib) == 512 * mib  # STREAM's 4 x the last-level cache
    assert membw.default_copy_bytes(64 * mib + 1) == 256 * mib + 4
    assert membw.default_copy_bytes(64 * mib) == 256 * mib  # exactly the floor
    assert membw.default_copy_bytes(32 * mib) == 256 * mib  # 128 MiB would be too small: the floor
    assert membw.default_copy_bytes(None) == 256 * mib


def test_the_single_thread_copy_reuses_the_buffers_and_is_its_own_median(monkeypatch):
    # 2 threads: 3 copies (2**-8 median), then one thread: 3 copies taking 2**-6, 2**-7, 2**-5 s
    clock = SequenceClock([0.0, 2**-8, 1.0, 1.0 + 2**-8, 2.0, 2.0 + 2**-8,
                           3.0, 3.0 + 2**-6, 4.0, 4.0 + 2**-7, 5.0, 5.0 + 2**-5])
    monkeypatch.setattr(membw, "time", types.SimpleNamespace(perf_counter=clock))
    allocated = []
    real_ones = np.ones
    monkeypatch.setattr(membw.np, "ones", lambda *a, **k: allocated.append(a) or real_ones(*a, **k))
    got = membw.copy_bandwidth(threads=2, nbytes=4 << 20, repeats=3, single_thread_repeats=3)
    assert got["gbps"] == pytest.approx(2.147483648, rel=1e-12)
    assert got["single_thread_gbps"] == pytest.approx(2.147483648 / 4, rel=1e-12)  # median 2**-6
    assert len(allocated) == 1
    monkeypatch.undo()
    one = membw.copy_bandwidth(threads=1, nbytes=1 << 20, repeats=1, single_thread_repeats=2)
    assert one["single_thread_gbps"] == one["gbps"]  # one thread: the same copies
    assert "single_thread_gbps" not in membw.copy_bandwidth(threads=2, nbytes=1 << 20, repeats=1)


def test_gemm_rate_is_the_best_of_the_repeats(monkeypatch):
    clock = SequenceClock([0.0, 0.5, 1.0, 1.25])  # 0.5 s, then 0.25 s
    monkeypatch.setattr(membw, "time", types.SimpleNamespace(perf_counter=clock))
    assert membw.gemm_flops_per_s(size=4, repeats=2) == 512.0  # 2 * 4**3 FLOP / 0.25 s
