"""The GPU path without a GPU: a fake adapter on device "cuda" with a fake event timer.

The fake device clock advances by a fixed amount per call, so the device time the harness
reports is known exactly, while the wall time is whatever the host measured."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeEvent

from harness import machine, registry
from harness.bench import rows as rows_mod
from harness.bench import suite, tables
from harness.bench.sweep import Case, get_profile

REPO = Path(__file__).resolve().parents[2]

FAKE_MODULE = textwrap.dedent('''
    """A NumPy embedding that pretends to run on a CUDA device with a fixed kernel time."""
    import numpy as np
    from fakes import FakeEvent
    from harness.adapter import Declared, EmbeddingAdapter

    KERNEL_S = 50e-6


    class FakeProbe:
        extra_bytes = 777

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False


    class FakeCuda(EmbeddingAdapter):
        framework = "fakecuda"
        device = "cuda"
        declared = Declared(weight_dtypes=("float32",), index_dtypes=("int32",))

        def __init__(self, variant):
            self.variant = variant
            self.id = f"fakecuda-{variant}-cuda"
            self.gather_twin = "fakecuda-gather-cuda"
            self.clock = {"now": 0.0}
            self.syncs = 0

        def versions(self):
            return {"fakecuda": "0"}

        def runtime_settings(self):
            return {"cuda_matmul_allow_tf32": False}

        def prepare_weights(self, w):
            return np.asarray(w)

        def prepare_ids(self, ids):
            return np.asarray(ids)

        def _tick(self, vocab):
            self.clock["now"] += KERNEL_S * (1 if self.variant == "gather" else vocab / 8)

        def forward(self, w, ids):
            self._tick(w.shape[0])
            return w[ids]

        def gradient(self, w, ids, up):
            self._tick(w.shape[0])
            grad = np.zeros_like(w)
            np.add.at(grad, ids, up)
            return grad

        def to_numpy(self, v):
            return np.asarray(v)

        def synchronize(self, value):
            self.syncs += 1

        def device_timer_event(self):
            return FakeEvent(self.clock)

        def device_memory_probe(self):
            return FakeProbe()


    def adapters():
        return [FakeCuda("gather"), FakeCuda("onehot")]
''')


@pytest.fixture
def fake_module(tmp_path, monkeypatch):
    (tmp_path / "fake_cuda_adapters.py").write_text(FAKE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    return importlib.import_module("fake_cuda_adapters")


class FakeStats:
    def __init__(self, data):
        self.data = sorted(data)
        self.median = float(np.median(data))
        self.iqr = float(np.subtract(*np.percentile(data, [75, 25])))
        self.rounds = len(data)


class FakeBenchmark:
    """The part of pytest-benchmark's fixture the suite uses: pedantic rounds x iterations."""

    enabled = True

    def __init__(self):
        self.extra_info, self.group, self.stats = {}, None, None
        self.calls = []

    def pedantic(self, target, rounds=1, iterations=1, warmup_rounds=0):
        import time

        self.calls.append((rounds, iterations, warmup_rounds))
        for _ in range(warmup_rounds * iterations):
            target()
        data = []
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(iterations):
                target()
            data.append((time.perf_counter() - start) / iterations)
        self.stats = type("Meta", (), {"stats": FakeStats(data)})()


def test_gpu_case_reports_event_device_time_and_wall_time(fake_module):
    session = suite.BenchSession(profile=get_profile("quick"), threads=1)
    session.copy_bw, session._ready = {"gbps": 1.0}, True
    adapter = fake_module.FakeCuda("gather")
    bench = FakeBenchmark()
    case = Case("forward", "float32", 64, 8, 256, "uniform")
    ids = session.inputs.ids(64, 256, "uniform").astype(np.int32)
    out = session.measure(bench, adapter, case, ids)
    assert out["median_s"] == pytest.approx(fake_module.KERNEL_S)  # from the events, exactly
    assert out["wall_median_s"] == bench.stats.stats.median  # from pytest-benchmark's rounds
    assert out["peak_mem_bytes"] == 777 and "events" in out["timer"]
    rounds, iterations, warmup = bench.calls[0]
    assert warmup == 1 and iterations >= 1 and rounds >= get_profile("quick").min_rounds


def test_gpu_case_without_an_event_source_reports_wall_time(fake_module):
    adapter = fake_module.FakeCuda("gather")
    adapter.device_timer_event = None  # a framework with no event timer
    session = suite.BenchSession(profile=get_profile("quick"), threads=1)
    session.copy_bw, session._ready = {"gbps": 1.0}, True
    bench = FakeBenchmark()
    out = session.measure(bench, adapter, Case("forward", "float32", 64, 8, 256, "uniform"),
                          session.inputs.ids(64, 256, "uniform").astype(np.int32))
    assert out["median_s"] == out["wall_median_s"] and out["timer"].startswith("wall")


def test_gpu_wall_rounds_sync_once_per_round(fake_module):
    adapter = fake_module.FakeCuda("gather")
    session = suite.BenchSession(profile=get_profile("quick"), threads=1)
    session.copy_bw, session._ready = {"gbps": 1.0}, True
    w = np.ones((64, 8), np.float32)
    ids = np.zeros(16, np.int32)
    bench = FakeBenchmark()
    before = adapter.syncs
    session._measure_gpu(bench, adapter, lambda: adapter.forward(w, ids), adapter.synchronize, t_call=1e-4)
    rounds, iterations, warmup = bench.calls[0]
    # (warm-up + timed rounds) syncs for the wall time, plus one after the event rounds
    assert adapter.syncs - before == rounds + warmup + 1
    assert iterations > 1  # several calls share one sync: launches are pipelined as in training


def test_cuda_slots_appear_when_detection_says_a_gpu_is_visible(monkeypatch):
    monkeypatch.delenv("EMBEDDING_HARNESS_DEVICES", raising=False)
    monkeypatch.setattr(machine, "cuda_visible", lambda: True)
    assert registry.visible_devices() == ["cpu", "cuda"]
    session = suite.BenchSession(profile=get_profile("smoke"), specs=["torch-gather"], threads=1)
    items = session.collect()
    ids = {i.adapter_id for i in items}
    assert {"torch-gather", "torch-gather-cuda"} <= ids
    cuda = session.adapters["torch-gather-cuda"]
    assert cuda["skip_reason"]  # no GPU here (or no torch): skipped with the reason, not dropped
    record = {"part": "core", "profile": "smoke", "machine": {}, "copy_bandwidth": {},
              "adapters": {"torch-gather-cuda": cuda}, "cases": []}
    rows = rows_mod.build_rows([record])
    assert rows and all(r["device"] == "cuda" and r["status"] == "skipped" for r in rows)
    section = tables.device_section(rows, "cuda", "GPU results")
    assert tables.GPU_NOT_MEASURED in section and cuda["skip_reason"] in section


def test_gpu_rows_end_to_end(tmp_path):
    """The real suite, pytest-benchmark timing on, over the fake CUDA adapters; then finalize."""
    (tmp_path / "fake_cuda_adapters.py").write_text(FAKE_MODULE)
    out = tmp_path / "results" / "m"
    plugin_path = os.pathsep.join([str(tmp_path), str(Path(__file__).parent)])  # the module and fakes.py
    env = {**os.environ, "PYTHONPATH": plugin_path, "EMBEDDING_HARNESS_MACHINE_ID": "fake-gpu",
           "EMBEDDING_HARNESS_ADAPTERS": "fake_cuda_adapters:adapters"}
    cmd = [sys.executable, "-m", "harness.bench", "run", "--part", "gpu", "--out", str(out),
           "--profile", "smoke", "--run-id", "t1", "--pytest-arg=--benchmark-enable",
           "--pytest-arg=-k", "--pytest-arg=not self_check"]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    fin = subprocess.run([sys.executable, "-m", "harness.bench", "finalize", "--out", str(out), "--run-id", "t1"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert fin.returncode == 0, fin.stderr
    rows = tables.read_csv((out / "bench.csv").read_text())
    gather = [r for r in rows if r["adapter"] == "fakecuda-gather-cuda"]
    assert gather and all(r["device"] == "cuda" and r["status"] == "ok" for r in gather)
    assert all(r["median_s"] == pytest.approx(50e-6) for r in gather)
    assert all(r["wall_median_s"] > 0 and r["peak_mem_bytes"] == 777 for r in gather)
    assert all(r["pct_copy_bw"] is None for r in gather)
    md = (out / "BENCH.md").read_text()
    gpu = md.split("## GPU results")[1].split("## Crossover")[0]
    assert "fakecuda-gather-cuda" in gpu and tables.GPU_NOT_MEASURED not in gpu
    assert "| fakecuda | cuda |" in md  # the crossover summary has the GPU pair
    assert (out / "plots" / "time_vs_vocab-fakecuda-cuda.png").stat().st_size > 0


def test_device_copy_bandwidth_from_events():
    clock = {"now": 0.0}

    def copy():
        clock["now"] += 1e-3  # a 1 ms device copy

    from harness.bench import membw

    got = membw.event_copy_bandwidth(copy, lambda: FakeEvent(clock), lambda: None, moved_bytes=2 * 10**9, repeats=3)
    assert got["gbps"] == pytest.approx(2000.0) and got["median_s"] == pytest.approx(1e-3)




def test_gpu_rows_use_the_device_copy_bandwidth_and_l2():
    adapters = {"g-gather-cuda": {"framework_label": "g", "variant": "gather", "device": "cuda", "gradient": "dense"}}
    case = {"adapter": "g-gather-cuda", "pass": "forward", "dtype": "float32", "vocab": 1 << 20, "dim": 64,
            "n_ids": 1000, "distribution": "uniform", "index_dtype": "int32", "unique": 1000, "dup_rate": 0.0,
            "status": "ok", "median_s": 1e-6, "iqr_s": 0.0, "rounds": 5, "wall_median_s": 2e-6, "compile_s": 0.1,
            "peak_mem_bytes": 0}
    record = {"part": "core", "profile": "quick", "machine": {"l2_cache_bytes": 1 << 20, "l3_cache_bytes": 32 << 20},
              "copy_bandwidth": {"gbps": 20.0}, "adapters": adapters, "cases": [case],
              "device_copy_bandwidth": {"gbps": 2000.0, "l2_cache_bytes": 50 << 20}}
    row = rows_mod.build_rows([record])[0]
    assert row["pct_copy_bw"] == pytest.approx(100 * row["gbps"] / 2000.0)
    assert row["fits_in_cache"] == "L2"  # 1000 rows + output touched: hot in the GPU's 50 MiB L2
    # 40 MiB touched: beyond the host's 32 MiB L3, within the GPU's L2, which is what counts here
    record["cases"] = [{**case, "n_ids": 80_000, "unique": 80_000}]
    assert rows_mod.build_rows([record])[0]["fits_in_cache"] == "L2"
    record["device_copy_bandwidth"] = {"error": "not measured"}
    assert rows_mod.build_rows([record])[0]["pct_copy_bw"] is None
