"""End to end on NumPy: run (smoke) -> finalize -> readme, and the one-line error paths."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.bench import tables
from harness.bench.rows import COLUMNS

REPO = Path(__file__).resolve().parents[2]


def _cli(*args, env_extra=None, timeout=300):
    env = {**os.environ, "EMBEDDING_HARNESS_MACHINE_ID": "bench-smoke-test", **(env_extra or {})}
    env.pop("EMBEDDING_HARNESS_BENCH_RUN_ID", None)
    return subprocess.run([sys.executable, "-m", "harness.bench", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("results") / "bench-smoke-test"
    run = _cli("run", "--part", "core", "--out", str(out), "--profile", "smoke", "--run-id", "smoke1",
               env_extra={"EMBEDDING_HARNESS_ADAPTERS": "numpy-*"})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    fin = _cli("finalize", "--out", str(out), "--profile", "smoke", "--run-id", "smoke1")
    assert fin.returncode == 0, fin.stderr
    return out


def test_smoke_run_writes_every_output(smoke_results):
    out = smoke_results
    for name in ("raw/smoke1/bench-core.json", "raw/smoke1/bench-run.json", "bench.csv", "bench_meta.json",
                 "BENCH.md", "plots/crossover.png", "plots/time_vs_vocab-numpy-cpu.png"):
        assert (out / name).stat().st_size > 0, name
    assert not (out / "tmp").exists()
    rows = tables.read_csv((out / "bench.csv").read_text())
    assert (out / "bench.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    assert {r["adapter"] for r in rows} == {"numpy-gather", "numpy-onehot"}
    assert all(r["status"] == "ok" for r in rows)
    assert {r["run_id"] for r in rows} == {"smoke1"}
    assert {r["pass"] for r in rows} == {"forward", "forward_backward"}
    assert {r["distribution"] for r in rows} == {"uniform", "zipf"}
    assert {r["dtype"] for r in rows} >= {"float32", "bfloat16"}  # numpy-gather declares bfloat16
    md = (out / "BENCH.md").read_text()
    assert tables.GPU_NOT_MEASURED in md and "## Self-check" in md


def test_readme_section_is_generated_from_results(smoke_results, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nbefore\n<!-- bench:start -->\nold text\n<!-- bench:end -->\nafter\n")
    got = _cli("readme", "--out", str(smoke_results), "--readme", str(readme))
    assert got.returncode == 0, got.stderr
    text = readme.read_text()
    assert "old text" not in text and text.startswith("# x\n\nbefore\n<!-- bench:start -->\n")
    assert text.endswith("<!-- bench:end -->\nafter\n")
    section = text.split("<!-- bench:start -->")[1].split("<!-- bench:end -->")[0]
    assert "numpy-gather" in section and "plots/crossover.png" in section
    rows = tables.read_csv((smoke_results / "bench.csv").read_text())
    first = next(r for r in rows if r["adapter"] == "numpy-gather" and r["pass"] == "forward"
                 and r["dtype"] == "float32" and r["distribution"] == "uniform")
    assert tables.fmt_time(first["median_s"]) in section  # the number comes from bench.csv


def test_readme_without_markers_is_a_one_line_error(smoke_results, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    got = _cli("readme", "--out", str(smoke_results), "--readme", str(readme))
    assert got.returncode == 2
    assert got.stderr.count("\n") == 1 and "bench:start" in got.stderr and "Traceback" not in got.stderr


def test_unknown_adapter_is_a_one_line_error(tmp_path):
    got = _cli("run", "--part", "core", "--out", str(tmp_path), "--profile", "smoke",
               env_extra={"EMBEDDING_HARNESS_ADAPTERS": "nosuch-gather"})
    assert got.returncode == 2 and "Traceback" not in got.stderr
    assert got.stderr.strip().startswith("bench run: unknown adapter 'nosuch-gather'")


def test_missing_framework_module_is_a_one_line_error(tmp_path):
    got = _cli("run", "--part", "core", "--out", str(tmp_path), "--profile", "smoke",
               env_extra={"EMBEDDING_HARNESS_ADAPTERS": "not_a_module_anywhere:make"})
    assert got.returncode == 2 and "Traceback" not in got.stderr
    assert "bench run:" in got.stderr.splitlines()[-1] and "not_a_module_anywhere" in got.stderr


def test_finalize_without_a_run_is_a_one_line_error(tmp_path):
    got = _cli("finalize", "--out", str(tmp_path), "--run-id", "never-ran")
    assert got.returncode == 2 and got.stderr.count("\n") == 1 and "no benchmark run recorded" in got.stderr
    got = _cli("finalize", "--out", str(tmp_path))
    assert got.returncode == 2 and got.stderr.count("\n") == 1 and "--run-id" in got.stderr


def test_finalize_names_a_corrupt_part(smoke_results, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(smoke_results, out)
    (out / "raw" / "smoke1" / "bench-core.json").write_text("{truncated")
    got = _cli("finalize", "--out", str(out), "--run-id", "smoke1")
    assert got.returncode == 2 and "bench-core.json" in got.stderr and "Traceback" not in got.stderr
