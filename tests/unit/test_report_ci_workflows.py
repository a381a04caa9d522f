"""The CI workflows: beyond the schema check in ``nox -s lint``, what the schema cannot see.

Expressions that name a matrix key, step, job, input or env var that does not exist; shell
that does not parse; a matrix that misses (or double-runs) a registered adapter; a GPU job
that could pass without a GPU."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import registry

yaml = pytest.importorskip("ruamel.yaml", reason="ruamel.yaml comes with check-jsonschema (dev extra)")

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
FRAMEWORKS = {"numpy", "torch", "tensorflow", "jax", "keras-tensorflow", "keras-jax", "keras-torch"}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def load(name: str) -> dict:
    return yaml.YAML(typ="safe").load((WORKFLOWS / name).read_text())


def text_of(node) -> str:
    """All strings in a YAML subtree, joined: where expressions can hide."""
    if isinstance(node, dict):
        return "\n".join(text_of(k) + "\n" + text_of(v) for k, v in node.items())
    if isinstance(node, list):
        return "\n".join(text_of(v) for v in node)
    return str(node)


def step_named(job: dict, needle: str) -> tuple[int, dict]:
    """The one step whose name holds ``needle``, else the one whose script does."""
    for field in ("name", "run"):
        found = [(i, s) for i, s in enumerate(job["steps"]) if needle in str(s.get(field, ""))]
        if found:
            assert len(found) == 1, f"several steps with {needle!r} in their {field}"
            return found[0]
    raise AssertionError(f"no step with {needle!r}")


@pytest.fixture(params=["ci.yml", "gpu.yml", "mutation.yml"])
def workflow(request) -> tuple[str, dict]:
    return request.param, load(request.param)


def test_expressions_name_things_that_exist(workflow):
    name, wf = workflow
    inputs = set(((wf.get("on") or {}).get("workflow_dispatch") or {}).get("inputs") or {})
    for job_id, job in wf["jobs"].items():
        matrix = (job.get("strategy") or {}).get("matrix") or {}
        matrix_keys = {k for k in matrix if k not in ("include", "exclude")}
        include = matrix.get("include", [])
        if isinstance(include, str):  # one job per registered framework, from the plan job
            assert "fromJSON(needs.plan.outputs.matrix)" in include, f"{name}: job {job_id}: {include}"
            include = registry.ci_matrix()
        matrix_keys |= {k for entry in include for k in entry}
        steps = {s["id"] for s in job.get("steps", []) if "id" in s}
        needs = job.get("needs", [])
        needs = {needs} if isinstance(needs, str) else set(needs)
        envs = set(wf.get("env") or {}) | set(job.get("env") or {})
        for expr in EXPRESSION.findall(text_of(job)):
            where = f"{name}: job {job_id}: ${{{{{expr.strip()}}}}}"
            for key in re.findall(r"\bmatrix\.([\w-]+)", expr):
                assert key in matrix_keys, where
            for key in re.findall(r"\bsteps\.([\w-]+)", expr):
                assert key in steps, where
            for key in re.findall(r"\bneeds\.([\w-]+)", expr):
                assert key in needs, where
            for key in re.findall(r"\binputs\.([\w-]+)", expr):
                assert key in inputs, where
            for key in re.findall(r"\benv\.([\w-]+)", expr):
                assert key in envs, where
        assert needs <= set(wf["jobs"]), f"{name}: job {job_id} needs an unknown job"


def test_actions_are_pinned_to_a_major_version(workflow):
    name, wf = workflow
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), f"{name}: {step['uses']}"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_run_scripts_are_valid_bash(workflow):
    name, wf = workflow
    for job_id, job in wf["jobs"].items():
        for step in job["steps"]:
            if "run" in step:
                script = EXPRESSION.sub("EXPR", step["run"])
                check = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
                assert check.returncode == 0, f"{name}: {job_id}: {step.get('name')}: {check.stderr}"


def test_ci_matrix_runs_every_framework_into_its_own_results_folder():
    wf = load("ci.yml")
    job = wf["jobs"]["framework"]
    assert job["strategy"]["fail-fast"] is False and job["needs"] == ["plan"]
    assert job["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert job["env"]["EMBEDDING_HARNESS_ADAPTERS"] == "${{ matrix.adapters }}"
    assert job["env"]["EMBEDDING_HARNESS_MACHINE_ID"] == "gha-${{ matrix.framework }}"
    runs = [s.get("run", "") for s in job["steps"]]
    assert "nox -s conformance" in runs and "nox -s bench -- --profile quick" in runs
    _, upload = step_named(job, "Upload results")
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert upload["with"]["if-no-files-found"] == "error"
    assert upload["with"]["name"] == "results-${{ matrix.framework }}"


def test_the_ci_matrix_is_the_registry_one_job_per_framework_each_default_adapter_once():
    plan = load("ci.yml")["jobs"]["plan"]
    _, step = step_named(plan, "python -m harness frameworks --ci-matrix")
    assert plan["outputs"]["matrix"] == f"${{{{ steps.{step['id']}.outputs.matrix }}}}"
    printed = subprocess.run([sys.executable, "-m", "harness", "frameworks", "--ci-matrix"], capture_output=True,
                             text=True, check=True, cwd=WORKFLOWS.parents[1]).stdout
    entries = json.loads(printed)
    assert "\n" not in printed.strip() and entries == registry.ci_matrix()
    assert {e["framework"] for e in entries} == FRAMEWORKS
    owners: dict[str, list[str]] = {adapter: [] for adapter in registry.known_adapters()}
    for entry in entries:
        globs = [g.strip() for g in entry["adapters"].split(",")]
        matched = [a for a in owners if any(fnmatch.fnmatch(a, g) for g in globs)]
        assert matched, f"{entry['framework']}: {entry['adapters']} selects no adapter"
        for adapter in matched:
            owners[adapter].append(entry["framework"])
    # every adapter in exactly one job, except the opt-in ones, which no job runs
    assert {a: o for a, o in owners.items() if len(o) != 1} == {a: [] for a in registry.opt_in()}


def test_ci_tests_job_and_merged_report():
    jobs = load("ci.yml")["jobs"]
    assert any(s.get("run") == "nox -s tests lint" for s in jobs["tests"]["steps"])
    report = jobs["report"]
    assert report["needs"] == ["framework"] and report["if"] == "${{ always() }}"
    i_download, download = step_named(report, "Download")
    assert download["uses"].startswith("actions/download-artifact@") and download["with"]["pattern"] == "results-*"
    i_build, build = step_named(report, "Build the report")
    assert build["run"].startswith("nox -s report")
    i_summary, summary = step_named(report, "Job summary")
    assert "REPORT.md" in summary["run"] and "$GITHUB_STEP_SUMMARY" in summary["run"]
    assert summary["if"] == "${{ always() }}"
    i_upload, upload = step_named(report, "Upload the merged report")
    assert upload["with"]["if-no-files-found"] == "error"
    assert i_download < i_build < i_summary < i_upload


def test_gpu_workflow_fails_without_a_gpu_before_running_anything():
    wf = load("gpu.yml")
    assert set(wf["on"]) == {"workflow_dispatch", "schedule"}
    job = wf["jobs"]["gpu"]
    assert job["runs-on"] == ["self-hosted", "gpu"]
    i_smi, _ = step_named(job, "nvidia-smi")
    i_install, install = step_named(job, "Install CUDA builds")
    i_check, check = step_named(job, "torch.cuda.is_available()")
    i_conf, _ = step_named(job, "nox -s conformance")
    i_bench, _ = step_named(job, "nox -s bench")
    i_upload, upload = step_named(job, "Upload results")
    assert i_smi < i_install < i_check < i_conf < i_bench < i_upload
    assert '--index-url "$TORCH_INDEX"' in install["run"] and '"jax[cuda12]"' in install["run"]
    assert "sys.exit(" in check["run"]  # a missing GPU ends the job with an error
    assert "continue-on-error" not in check
    assert upload["with"]["if-no-files-found"] == "error"
