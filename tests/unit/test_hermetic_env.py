"""The registry and GPU tests must not depend on what this machine has. They run again here in a
Python where ``import torch`` fails (a sitecustomize.py blocks it) on a machine that looks like it
has a GPU (a fake nvidia-smi on PATH, CUDA_VISIBLE_DEVICES=0), and, where torch is installed, in one
whose torch claims a CUDA device: they must pass in both.

The end-to-end GPU test (it starts harness processes of its own, ~15 s) is left out to keep this
short; to run every file that way by hand, from the repository root:

    mkdir -p /tmp/notorch
    python -c "import sys; sys.path.insert(0, 'tests/unit'); import fakes; print(fakes.BLOCK_TORCH_SITECUSTOMIZE)" \\
        > /tmp/notorch/sitecustomize.py
    PYTHONPATH=/tmp/notorch python -m pytest -q -p no:cacheprovider tests/unit
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import (
    BLOCK_TORCH_SITECUSTOMIZE,
    CUDA_TORCH_SITECUSTOMIZE,
    NVIDIA_SMI_H100,
    env_with_pythonpath,
    write_fake_nvidia_smi,
)

REPO = Path(__file__).resolve().parents[2]
FILES = ["tests/unit/test_registry.py", "tests/unit/test_bench_gpu.py"]


def _env(tmp_path: Path, sitecustomize: str) -> dict:
    """This environment with ``sitecustomize`` loaded first and a fake GPU in sight of nvidia-smi."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(sitecustomize)
    write_fake_nvidia_smi(tmp_path / "bin", [NVIDIA_SMI_H100])
    env = env_with_pythonpath(site)
    env["PATH"] = os.pathsep.join([str(tmp_path / "bin"), env.get("PATH", "")])
    env["CUDA_VISIBLE_DEVICES"] = "0"
    env.pop("EMBEDDING_HARNESS_DEVICES", None)
    return env


def _python(env: dict, code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def _pytest(env: dict) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *FILES, "-k", "not end_to_end"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_registry_and_gpu_tests_pass_without_torch_and_with_a_gpu_in_sight(tmp_path):
    env = _env(tmp_path, BLOCK_TORCH_SITECUSTOMIZE)
    probe = _python(env, "import torch")
    assert probe.returncode == 1 and "blocked by the hermetic test" in probe.stderr  # torch is really gone
    visible = _python(env, "from harness.registry import visible_devices; print(visible_devices())")
    assert visible.stdout.strip() == "['cpu', 'cuda']", visible.stderr  # and the fake GPU is in sight
    run = _pytest(env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # the one test that needs the real torch was skipped, saying why
    assert "checks the fake against the real torch API" in run.stdout and " failed" not in run.stdout


def _torch_installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:  # blocked, as in the run above
        return False


@pytest.mark.skipif(not _torch_installed(), reason="needs torch installed, to make it claim a CUDA device")
def test_registry_and_gpu_tests_pass_where_torch_sees_a_gpu(tmp_path):
    env = _env(tmp_path, CUDA_TORCH_SITECUSTOMIZE)
    probe = _python(env, "import torch; print(torch.cuda.is_available())")
    assert probe.stdout.strip() == "True", probe.stderr  # a GPU host, as far as torch tells
    run = _pytest(env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "skipped" not in run.stdout  # torch is there: nothing skipped
