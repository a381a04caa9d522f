"""Stand-ins shared by the unit tests: clocks, CUDA events, frameworks and GPUs that are not there.

Every fake here makes a test independent of the machine: which frameworks are installed, whether
a GPU is visible, how fast the host is. Times are binary fractions (0.25, 2**-10) so the values
a test expects are exact, not approximations of what the code computed."""

from __future__ import annotations

import os
import stat
import sys
import types
from pathlib import Path


class FakeEvent:
    """CUDA-event stand-in reading a fake device clock (seconds)."""

    def __init__(self, clock):
        self.clock, self.t = clock, None
        self.synchronized = 0

    def record(self):
        self.t = self.clock["now"]

    def synchronize(self):
        self.synchronized += 1

    def elapsed_time(self, end):
        return (end.t - self.t) * 1e3  # milliseconds, like torch.cuda.Event


class FakeClock:
    """A ``perf_counter`` stand-in: returns ``now``, then moves it on by ``step`` (0: only by hand)."""

    def __init__(self, now: float = 0.0, step: float = 0.0):
        self.now, self.step, self.reads = now, step, 0

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        self.reads += 1
        return value

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SequenceClock:
    """A ``perf_counter`` stand-in returning the given readings in order."""

    def __init__(self, readings):
        self.readings = list(readings)

    def __call__(self) -> float:
        return self.readings.pop(0)


class FakeStats:
    def __init__(self, data):
        import numpy as np

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

    def pedantic(self, target, rounds=1, iterations=1, warmup_rounds=0, teardown=None):
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
            if teardown is not None:
                teardown()
        if teardown is not None and iterations > 1:  # as pytest-benchmark: one more call for the result
            target()
            teardown()
        self.stats = type("Meta", (), {"stats": FakeStats(data)})()


def fake_torch(cuda_available: bool = False, allocated: int = 0, peak: int = 0) -> types.ModuleType:
    """A module to put in ``sys.modules['torch']``: what the harness and the torch backend touch at
    construction, with CUDA visible or not whatever the machine has. ``calls`` logs the cuda calls."""
    torch = types.ModuleType("torch")
    torch.__version__ = "0.0+fake"
    torch.calls = []

    def log(name, value=None):
        def call(*args, **kwargs):
            torch.calls.append(name)
            return value
        return call

    torch.cuda = types.SimpleNamespace(
        is_available=log("is_available", cuda_available),
        Event=lambda enable_timing=False: ("fake-cuda-event", enable_timing),
        synchronize=log("synchronize"),
        reset_peak_memory_stats=log("reset_peak_memory_stats"),
        memory_allocated=log("memory_allocated", allocated),
        max_memory_allocated=log("max_memory_allocated", peak),
    )
    torch.version = types.SimpleNamespace(cuda=None)
    return torch


def fake_tensorflow(current: int, peak: int) -> types.ModuleType:
    """``sys.modules['tensorflow']`` with the allocator statistics the TensorFlow runtime's memory probe reads."""
    tf = types.ModuleType("tensorflow")
    tf.calls = []

    def reset_memory_stats(device):
        tf.calls.append(("reset_memory_stats", device))

    def get_memory_info(device):
        tf.calls.append(("get_memory_info", device))
        return {"current": current, "peak": peak}

    tf.config = types.SimpleNamespace(experimental=types.SimpleNamespace(
        reset_memory_stats=reset_memory_stats, get_memory_info=get_memory_info))
    return tf


NVIDIA_SMI_H100 = "NVIDIA H100 80GB HBM3, 81559 MiB, 550.54.15, 1980 MHz, 700.00 W"


def write_fake_nvidia_smi(folder: Path, lines: list[str], exit_code: int = 0) -> Path:
    """An ``nvidia-smi`` executable in ``folder`` that prints ``lines`` (the csv rows the
    ``--query-gpu`` call asks for) and exits with ``exit_code``."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    body = "".join(f"print({line!r})\n" for line in lines)
    script.write_text(f"#!{sys.executable}\n{body}raise SystemExit({exit_code})\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


# Put the folder holding this as ``sitecustomize.py`` first on PYTHONPATH and ``import torch``
# fails in that interpreter, as on a machine without torch (tests/unit/test_hermetic_env.py).
BLOCK_TORCH_SITECUSTOMIZE = '''\
import sys


class _NoTorch:
    """Meta-path finder: torch and its submodules are not installed here."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the hermetic test)", name=name)
        return None


sys.meta_path.insert(0, _NoTorch())
'''


# The opposite: the torch installed here claims a CUDA device, as on a GPU machine (nothing runs on
# it: a test that really used it would fail, which is the point).
CUDA_TORCH_SITECUSTOMIZE = '''\
import importlib.machinery
import sys


class _CudaTorch:
    """Meta-path finder: torch loads as usual, then says a CUDA device is available."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.cuda.is_available = lambda: True
            module.cuda.device_count = lambda: 1

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _CudaTorch())
'''


def env_with_pythonpath(first: Path, base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(first), *filter(None, [env.get("PYTHONPATH")])])
    return env
