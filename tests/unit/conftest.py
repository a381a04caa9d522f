import sys
from pathlib import Path

import pytest

# broken_adapters.py lives beside the tests; make it importable as a plug-in module.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2]))


@pytest.fixture
def nvidia_smi(tmp_path, monkeypatch):
    """Decide what ``nvidia-smi`` says, whatever this machine has: ``nvidia_smi(lines)`` puts a fake
    one printing ``lines`` alone on PATH, ``nvidia_smi(None)`` leaves none. harness.machine.gpus()
    caches its answer, so the cache is cleared before and after."""
    from fakes import write_fake_nvidia_smi

    from harness import machine

    machine.gpus.cache_clear()

    def install(lines, exit_code: int = 0, cuda_visible_devices: str | None = None):
        folder = tmp_path / "fake-bin"
        folder.mkdir(exist_ok=True)
        if lines is not None:
            write_fake_nvidia_smi(folder, lines, exit_code)
        monkeypatch.setenv("PATH", str(folder))
        if cuda_visible_devices is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", cuda_visible_devices)
        machine.gpus.cache_clear()

    yield install
    machine.gpus.cache_clear()
