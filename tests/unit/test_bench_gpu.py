"""The GPU path without a GPU: a fake adapter on device "cuda" with a fake event timer, a fake
nvidia-smi and a fake torch, so these tests give the same answers on a machine with or without
a GPU, with or without torch.

The fake device clock advances by a fixed amount per call, so the device time the harness
reports is known exactly, while the wall time is whatever the host measured."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from fakes import NVIDIA_SMI_H100, FakeBenchmark, FakeEvent, fake_torch

from harness import machine, registry
from harness.bench import rows as rows_mod
from harness.bench import suite
from harness.bench.sweep import Case, get_profile
from harness.schema import read_bench_csv
from harness.views import bench as tables

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


def test_gpu_case_reports_event_device_time_and_wall_time(fake_module):
    session = suite.BenchSession(profile=get_profile("quick"), threads=1)
    session.copy_bw, session._ready = {"gbps": 1.0}, True
    adapter = fake_module.FakeCuda("gather")
    bench = FakeBenchmark()
    case = Case("forward", "float32", 64, 8, 256, "uniform")
    ids = session.inputs.ids(64, 256, "uniform").astype(np.int32)
    out = session.timer.measure(bench, adapter, case, ids)
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
    out = session.timer.measure(bench, adapter, Case("forward", "float32", 64, 8, 256, "uniform"),
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
    session.timer.measure_gpu(bench, adapter, lambda: adapter.forward(w, ids), adapter.synchronize, t_call=1e-4,
                              budget=session.profile.round_budget)
    rounds, iterations, warmup = bench.calls[0]
    # (warm-up + timed rounds) syncs for the wall time, plus one after the event rounds
    assert adapter.syncs - before == rounds + warmup + 1
    assert iterations > 1  # several calls share one sync: launches are pipelined as in training


def test_cuda_slots_appear_when_detection_says_a_gpu_is_visible(monkeypatch):
    monkeypatch.delenv("EMBEDDING_HARNESS_DEVICES", raising=False)
    monkeypatch.setattr(machine, "cuda_visible", lambda: True)
    # nvidia-smi sees a GPU that torch cannot use (a CPU-only build): faked, whatever is installed here
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda_available=False))
    assert registry.visible_devices() == ["cpu", "cuda"]
    session = suite.BenchSession(profile=get_profile("smoke"), specs=["torch-gather"], threads=1)
    items = session.collect()
    ids = {i.adapter_id for i in items}
    assert {"torch-gather", "torch-gather-cuda"} <= ids
    cuda = session.adapters["torch-gather-cuda"]
    assert cuda == {"id": "torch-gather-cuda",  # skipped with the reason, not dropped
                    "skip_reason": "torch sees no CUDA device (CPU-only build or no GPU)"}
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
    # the module and fakes.py first; what the caller had on PYTHONPATH after (a hermetic run's blocks)
    plugin_path = os.pathsep.join([str(tmp_path), str(Path(__file__).parent),
                                   *filter(None, [os.environ.get("PYTHONPATH")])])
    # CUDA_VISIBLE_DEVICES= hides a real GPU from every framework: no real device copy bandwidth is
    # measured (the GPU rows have no % of copy bandwidth), on a GPU machine as on this one
    env = {**os.environ, "PYTHONPATH": plugin_path, "EMBEDDING_HARNESS_MACHINE_ID": "fake-gpu",
           "EMBEDDING_HARNESS_ADAPTERS": "fake_cuda_adapters:adapters", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "harness.bench", "run", "--part", "gpu", "--out", str(out),
           "--profile", "smoke", "--run-id", "t1", "--pytest-arg=--benchmark-enable",
           "--pytest-arg=-k", "--pytest-arg=not self_check"]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    fin = subprocess.run([sys.executable, "-m", "harness.bench", "finalize", "--out", str(out), "--run-id", "t1"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert fin.returncode == 0, fin.stderr
    rows = read_bench_csv((out / "bench.csv").read_text())
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
    from harness.bench import membw

    clock, synced = {"now": 0.0}, []
    # a warm-up copy (not timed), then copies of 2**-10, 2**-9 and 2**-11 s: median 2**-10, best 2**-11
    durations = iter([1.0, 2**-10, 2**-9, 2**-11])

    def copy():
        clock["now"] += next(durations)

    got = membw.event_copy_bandwidth(copy, lambda: FakeEvent(clock), lambda: synced.append(1), moved_bytes=2**30,
                                     repeats=3)
    assert got["median_s"] == 2**-10 and got["best_s"] == 2**-11 and synced == [1]
    # 2**30 bytes / 2**-10 s = 2**40 B/s = 1099.511627776 GB/s; best twice that
    assert got["gbps"] == pytest.approx(1099.511627776, rel=1e-12)
    assert got["best_gbps"] == pytest.approx(2199.023255552, rel=1e-12)
    assert (got["bytes_per_copy"], got["repeats"]) == (2**30, 3)


def test_device_copy_info_comes_from_the_first_runtime_that_measures_it_or_says_why_none_did(monkeypatch):
    from backends.jax_backend import RUNTIME as JAX
    from backends.torch_backend import RUNTIME as TORCH
    from harness.bench import membw
    from harness.framework import Runtime

    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda_available=False))
    assert membw.device_copy_info("cuda", [JAX, TORCH]) == {
        "error": "cuda copy bandwidth not measured (torch: torch sees no CUDA device)"}
    monkeypatch.setitem(sys.modules, "torch", None)  # torch not installed
    assert membw.device_copy_info("cuda", [TORCH]) == {
        "error": "cuda copy bandwidth not measured (torch: FrameworkUnavailable: torch is not installed: "
                 "pip install 'embedding-harness[torch]')"}
    assert membw.device_copy_info("cuda", [JAX]) == {
        "error": "cuda copy bandwidth not measured (no registered framework measures it)"}

    class Measures(Runtime):
        name = "acme"

        def copy_bandwidth(self, device, nbytes):
            return {"gbps": nbytes / 1e9, "name": f"{device} board"}

    got = membw.device_copy_info("cuda", [JAX, TORCH, Measures(), Measures()], nbytes=2 * 10**9)
    assert got == {"gbps": 2.0, "name": "cuda board", "measured_by": "acme"}


# ---- GPU detection: nvidia-smi, faked -------------------------------------------------------


def test_gpus_are_read_from_nvidia_smi(nvidia_smi):
    nvidia_smi([NVIDIA_SMI_H100, "NVIDIA A100-SXM4-40GB, 40960 MiB, 550.54.15, 1410 MHz, 400.00 W"])
    assert machine.gpus() == [
        {"name": "NVIDIA H100 80GB HBM3", "memory": "81559 MiB", "driver": "550.54.15", "max_sm_clock": "1980 MHz",
         "power_limit": "700.00 W"},
        {"name": "NVIDIA A100-SXM4-40GB", "memory": "40960 MiB", "driver": "550.54.15", "max_sm_clock": "1410 MHz",
         "power_limit": "400.00 W"}]
    assert machine.cuda_visible()


@pytest.mark.parametrize(("lines", "exit_code"), [(None, 0), ([], 0), ([NVIDIA_SMI_H100], 9)])
def test_no_gpu_without_nvidia_smi_or_when_it_fails(nvidia_smi, lines, exit_code):
    nvidia_smi(lines, exit_code=exit_code)
    assert machine.gpus() == [] and not machine.cuda_visible()


def test_the_machine_id_names_the_first_gpu(monkeypatch, nvidia_smi):
    nvidia_smi([NVIDIA_SMI_H100])
    monkeypatch.delenv(machine.ID_ENV, raising=False)
    assert machine.machine_id().endswith("-h100-80gb-hbm3")


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
    # 1000 x (2 x 64 x 4 + 4) = 516000 bytes in 1e-6 s: 516 GB/s, 25.8 % of the device's 2000 GB/s
    # (against the host's 20 GB/s it would read 2580 %)
    assert row["gbps"] == pytest.approx(516.0, rel=1e-12)
    assert row["pct_copy_bw"] == pytest.approx(25.8, rel=1e-12)
    assert row["fits_in_cache"] == "L2"  # 1000 rows + output touched: hot in the GPU's 50 MiB L2
    # 40 MiB touched: beyond the host's 32 MiB L3, within the GPU's L2, which is what counts here
    record["cases"] = [{**case, "n_ids": 80_000, "unique": 80_000}]
    assert rows_mod.build_rows([record])[0]["fits_in_cache"] == "L2"
    # 200000 rows + 200000 output rows of 256 B + ids: 103.2 MB, beyond the GPU's 50 MiB L2; within a host
    # L3 of 256 MiB, which does not count for a GPU row: cold ("no"), not "L3"
    record["machine"]["l3_cache_bytes"] = 256 << 20
    record["cases"] = [{**case, "n_ids": 200_000, "unique": 200_000}]
    assert rows_mod.build_rows([record])[0]["fits_in_cache"] == "no"
    record["cases"] = [case]
    assert rows_mod.build_rows([record])[0]["pct_peak_bw"] is None  # the device is not named: no datasheet
    record["device_copy_bandwidth"]["name"] = "NVIDIA H100 80GB HBM3"
    # 516 GB/s of the H100 SXM datasheet's 3350 GB/s: 15.4029850746 %
    assert rows_mod.build_rows([record])[0]["pct_peak_bw"] == pytest.approx(15.402985074626866, rel=1e-12)
    record["device_copy_bandwidth"] = {"error": "not measured"}
    assert rows_mod.build_rows([record])[0]["pct_copy_bw"] is None
