"""The compile cache a conformance run shares between its processes: every unit is told the
run's folder, and the JAX backends keep their compiled programs there (only when told)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import supervisor
from harness.adapter import COMPILE_CACHE_ENV

REPO = Path(__file__).resolve().parents[2]


def test_every_unit_is_told_the_runs_compile_cache_folder(tmp_path, monkeypatch):
    started = []

    class Recorded:
        def __init__(self, cmd, **kwargs):
            started.append(kwargs["env"])

    monkeypatch.setattr(supervisor.subprocess, "Popen", Recorded)
    for label in ("jax-gather", "numpy-gather"):
        supervisor.UnitRun(supervisor.Unit(label, [label]), tmp_path, []).start()
    assert [env[COMPILE_CACHE_ENV] for env in started] == [str(tmp_path / "compile-cache")] * 2


_PROBE = """
import numpy as np, jax
from backends.jax_backend import JaxTake
JaxTake().lookup(np.ones((3, 2), np.float32), np.array([2, 0]))
print(jax.config.jax_compilation_cache_dir)
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_keeps_its_compiled_programs_in_that_folder_only_when_told(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != COMPILE_CACHE_ENV and not k.startswith("JAX_")}
    env["PYTHONPATH"] = str(REPO)
    plain = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert plain.stdout.strip() == "None"
    folder = tmp_path / "compile-cache"
    told = subprocess.run([sys.executable, "-c", _PROBE], env={**env, COMPILE_CACHE_ENV: str(folder)},
                          capture_output=True, text=True, timeout=120)
    assert told.returncode == 0, told.stderr[-2000:]
    assert told.stdout.strip() == str(folder)
    assert any(folder.iterdir())  # even a program that compiled in milliseconds is kept


_TORCH_PROBE = """
import os, torch
from backends.torch_backend import prepare_compile
prepare_compile(torch)
print(os.environ.get("TORCHINDUCTOR_CACHE_DIR"))
"""


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_inductor_compiles_into_that_folder_only_when_told(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in (COMPILE_CACHE_ENV, "TORCHINDUCTOR_CACHE_DIR")}
    env["PYTHONPATH"] = str(REPO)
    plain = subprocess.run([sys.executable, "-c", _TORCH_PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr[-2000:]
    folder = tmp_path / "compile-cache"
    assert str(folder) not in plain.stdout  # inductor's own default (torch may set the variable to it)
    told = subprocess.run([sys.executable, "-c", _TORCH_PROBE], env={**env, COMPILE_CACHE_ENV: str(folder)},
                          capture_output=True, text=True, timeout=120)
    assert told.returncode == 0, told.stderr[-2000:]
    assert told.stdout.strip() == str(folder / "inductor")
