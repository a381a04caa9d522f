"""End to end on NumPy: run (smoke) -> finalize -> readme, and the one-line error paths."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.bench.rows import COLUMNS
from harness.bench.sweep import sized_rows
from harness.schema import read_bench_csv
from harness.views import bench as tables
from harness.views import formats

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
    rows = read_bench_csv((out / "bench.csv").read_text())
    assert (out / "bench.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    assert {r["adapter"] for r in rows} == {"numpy-gather", "numpy-onehot"}
    assert all(r["status"] == "ok" for r in rows)
    assert {r["run_id"] for r in rows} == {"smoke1"}
    assert {r["pass"] for r in rows} == {"forward", "forward_backward"}
    assert {r["distribution"] for r in rows} == {"uniform", "zipf", "uniform-stream"}
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
    rows = sized_rows(read_bench_csv((smoke_results / "bench.csv").read_text()))
    first = next(r for r in rows if r["adapter"] == "numpy-gather" and r["pass"] == "forward"
                 and r["dtype"] == "float32" and r["distribution"] == "uniform")
    assert formats.fmt_time(first["median_s"]) in section  # the number comes from bench.csv


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
    checked = _cli("check", "--profile", "smoke", env_extra={"EMBEDDING_HARNESS_ADAPTERS": "nosuch-gather"})
    assert checked.returncode == 2 and checked.stderr.count("\n") == 1 and "unknown adapter" in checked.stderr
    bad_id = _cli("check", env_extra={"EMBEDDING_HARNESS_MACHINE_ID": ".."})
    assert bad_id.returncode == 2 and bad_id.stderr.count("\n") == 1 and "start with a letter" in bad_id.stderr


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


def _copy(smoke_results, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(smoke_results, out)
    return out


def test_a_selective_run_keeps_the_rows_it_did_not_measure(smoke_results, tmp_path):
    out = _copy(smoke_results, tmp_path)
    only = {"EMBEDDING_HARNESS_ADAPTERS": "numpy-gather"}
    assert _cli("run", "--part", "core", "--out", str(out), "--profile", "smoke", "--run-id", "smoke2",
                env_extra=only).returncode == 0
    fin = _cli("finalize", "--out", str(out), "--profile", "smoke", "--run-id", "smoke2")
    assert fin.returncode == 0, fin.stderr
    rows = read_bench_csv((out / "bench.csv").read_text())
    before = read_bench_csv((smoke_results / "bench.csv").read_text())
    assert len(rows) == len(before)
    assert {r["run_id"] for r in rows if r["adapter"] == "numpy-gather"} == {"smoke2"}
    assert {r["run_id"] for r in rows if r["adapter"] == "numpy-onehot"} == {"smoke1"}
    assert (out / "raw" / "smoke1").is_dir()  # still the evidence behind the kept rows
    assert "kept from earlier runs (smoke1)" in (out / "BENCH.md").read_text()
    meta = json.loads((out / "bench_meta.json").read_text())
    assert set(meta["parts"]) == {"core", "core@smoke1"}
    assert meta["kept_rows"] == sum(r["adapter"] == "numpy-onehot" for r in before)
    # A run that measures everything again leaves no row, and no raw folder, of the old runs.
    assert _cli("run", "--part", "core", "--out", str(out), "--profile", "smoke", "--run-id", "smoke3",
                env_extra={"EMBEDDING_HARNESS_ADAPTERS": "numpy-*"}).returncode == 0
    assert _cli("finalize", "--out", str(out), "--profile", "smoke", "--run-id", "smoke3").returncode == 0
    assert {r["run_id"] for r in read_bench_csv((out / "bench.csv").read_text())} == {"smoke3"}
    assert sorted(p.name for p in (out / "raw").iterdir()) == ["smoke3"]


def test_each_profile_writes_its_own_folder(tmp_path):
    env = {"EMBEDDING_HARNESS_ADAPTERS": "numpy-gather", "EMBEDDING_HARNESS_RESULTS": str(tmp_path)}
    assert _cli("run", "--part", "core", "--profile", "smoke", "--run-id", "p1", env_extra=env).returncode == 0
    assert _cli("finalize", "--profile", "smoke", "--run-id", "p1", env_extra=env).returncode == 0
    machine = tmp_path / "bench-smoke-test"
    assert (machine / "profile-smoke" / "bench.csv").exists() and (machine / "profile-smoke" / "raw" / "p1").is_dir()
    assert not (machine / "bench.csv").exists()  # the full profile's table is not touched


def test_a_failed_part_is_listed_as_failed_in_bench_md_and_the_report(smoke_results, tmp_path):
    from harness.report import build_report

    root = tmp_path / "results"
    out = _copy(smoke_results, root)
    manifest = out / "raw" / "smoke1" / "bench-run.json"
    data = json.loads(manifest.read_text())
    data["parts"]["core"].update(status="failed", message="timing self-check failed: harness/timeit ratio 0.20")
    manifest.write_text(json.dumps(data))
    assert _cli("finalize", "--out", str(out), "--profile", "smoke", "--run-id", "smoke1").returncode == 0
    md = (out / "BENCH.md").read_text()
    assert "**1 part(s) FAILED**: core: timing self-check failed: harness/timeit ratio 0.20" in md
    build_report(root)
    assert "Benchmark part **core** FAILED: timing self-check failed" in (root / "REPORT.md").read_text()
    assert "Benchmark part <b>core</b> FAILED" in (root / "report.html").read_text()


def test_part_problems_name_every_reason_a_part_failed():
    from harness.bench.run import part_problems

    record = {"self_check": [{"ok": True}, {"ok": False, "problem": "harness/timeit ratio 4.76"}]}
    assert part_problems(record, {"ok": 3}, 1) == ["timing self-check failed: harness/timeit ratio 4.76"]
    assert part_problems({}, {"error": 2}, 1) == ["2 benchmark(s) raised an error"]
    assert part_problems({}, {"ok": 3}, 0) == []
    assert part_problems({}, {"ok": 3}, -9) == ["the benchmark process exited with code -9"]


def test_the_report_shows_another_profile_when_a_machine_has_no_full_run(smoke_results, tmp_path):
    import shutil

    from harness.report import build_report

    root = tmp_path / "results"
    shutil.copytree(smoke_results, root / "bench-smoke-test" / "profile-smoke")
    build_report(root)
    md = (root / "REPORT.md").read_text()
    assert "Benchmark profile **smoke** (no full-profile run on this machine)" in md
    assert "bench-smoke-test/profile-smoke/BENCH.md" in md and "numpy-gather" in md
