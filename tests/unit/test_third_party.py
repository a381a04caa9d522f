"""Third-party adapters: a correct one passes, deliberately broken ones fail with a minimal,
runnable example. Also shows how a third party runs the checks from its own pytest suite."""

import json
import os
import subprocess
import sys
from pathlib import Path

import broken_adapters
import numpy as np
import pytest

from examples.my_embedding import MyEmbedding
from harness.checks import run_check
from harness.pytest_plugin import conformance_params

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize("case", conformance_params([MyEmbedding()]))
def test_my_embedding_conforms(case):
    """The README's example adapter, run the way a third party would in its own suite."""
    case.run()


def _run_snippet(detail: str):
    code = detail.split("--- reproduce ---", 1)[1].split("Falsifying example")[0].split("Failing test case")[0]
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{Path(__file__).parent}"})


def test_lost_duplicate_accumulation_fails_with_a_minimal_repro():
    adapter = broken_adapters.LosesDuplicates()
    adapter.source = "broken_adapters:make_sample"
    result = run_check(adapter, "gradient[float32]")
    assert result.status == "failed"
    assert "gradient differs from the scatter-add" in result.detail
    # Hypothesis shrinks to the smallest case: one id used twice.
    assert "ids = np.array([0, 0]" in result.detail or "ids = np.array([1, 1]" in result.detail
    proc = _run_snippet(result.detail)
    assert proc.returncode == 0, proc.stderr
    assert run_check(adapter, "duplicates_accumulate").status == "failed"


def test_declared_behaviour_must_be_the_observed_one():
    result = run_check(broken_adapters.ClampsButDeclaresRaise(), "out_of_range")
    assert result.status == "failed"
    assert "declared 'raise', observed 'clamp'" in result.detail
    assert result.observed["out_of_range"] == "clamp"


def test_wrong_output_dtype_fails():
    result = run_check(broken_adapters.CastsOutputToFloat32(), "forward[float64]")
    assert result.status == "failed" and "output dtype float32" in result.detail


def test_declared_deviation_that_does_not_occur_is_a_failure():
    class OverlyHumble(MyEmbedding):
        id = "humble"

    adapter = OverlyHumble()
    adapter.declared = type(adapter.declared)(**{**adapter.declared.__dict__,
                                                 "deviations": {"scalar_id": "claims to fail"}})
    result = run_check(adapter, "scalar_id")
    assert result.status == "failed" and "did not occur" in result.detail


def test_suite_reports_broken_plugin_failing_and_correct_one_passing(tmp_path):
    """End to end through EMBEDDING_HARNESS_ADAPTERS, the way nox -s conformance runs it."""
    out = tmp_path / "part.json"
    env = {**os.environ, "EMBEDDING_HARNESS_ADAPTERS": "examples.my_embedding:make_adapter,broken_adapters:make_sample",
           "PYTHONPATH": f"{ROOT}{os.pathsep}{Path(__file__).parent}", "HYPOTHESIS_PROFILE": "ci"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/conformance", "-q", "-p", "no:cacheprovider",
                           f"--conformance-out={out}"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout[-2000:]
    doc = json.loads(out.read_text())
    by_id = {a["id"]: a for a in doc["adapters"]}
    assert by_id["my-embedding"]["counts"]["failed"] == 0
    assert by_id["my-embedding"]["counts"]["passed"] > 10
    broken = {c["check"]: c for c in by_id["broken-loses-duplicates"]["checks"]}
    assert broken["duplicates_accumulate"]["status"] == "failed"
    assert "--- reproduce ---" in broken["gradient[float32]"]["detail"]
    assert by_id["broken-clamps"]["observed"]["out_of_range"] == "clamp"
    assert "broken-loses-duplicates::duplicates_accumulate" in proc.stdout


def test_snippet_rebuilds_bfloat16_arrays_exactly():
    from harness.dtypes import np_dtype
    from harness.repro import array_literal

    values = np.array([1.5, -0.0, 3e-39]).astype(np_dtype("bfloat16"))
    rebuilt = eval(array_literal(values), {"np": np, "np_dtype": np_dtype})
    assert rebuilt.dtype == values.dtype and np.array_equal(rebuilt.view(np.uint16), values.view(np.uint16))
