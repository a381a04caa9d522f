"""The parent side of ``run``: thread environment, adapter checks (no framework imports)."""

import pytest

from harness.bench import run
from harness.errors import UnknownAdapter


def test_thread_env_sets_every_knob_to_the_same_count():
    env = run.thread_env(3, {"XLA_FLAGS": "--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=false", "PATH": "/bin"})
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                "TF_NUM_INTEROP_THREADS"):
        assert env[var] == "3"
    flags = env["XLA_FLAGS"].split()
    assert "--xla_dump_to=/tmp/x" in flags  # the user's own flags survive
    assert "--xla_cpu_multi_thread_eigen=true" in flags
    assert all(f.startswith("--") for f in flags)  # XLA ignores a flag without its dashes
    assert "--xla_cpu_multi_thread_eigen=false" not in flags
    assert env["PATH"] == "/bin" and env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    assert "--xla_cpu_multi_thread_eigen=false" in run.thread_env(1, {})["XLA_FLAGS"]


def test_adapter_specs_are_checked_before_spawning():
    run.check_specs({"EMBEDDING_HARNESS_ADAPTERS": "numpy-*,torch-gather,some.module:factory"})
    with pytest.raises(UnknownAdapter, match="'nosuch-\\*'"):
        run.check_specs({"EMBEDDING_HARNESS_ADAPTERS": "numpy-gather,nosuch-*"})


def test_more_threads_than_cores_is_refused():
    import os

    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match="affinity mask"):
        run._cores(len(os.sched_getaffinity(0)) + 1)
    assert len(run._cores(1)) == 1
