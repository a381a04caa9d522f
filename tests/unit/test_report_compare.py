"""--compare: noise-aware verdicts per benchmark row, status changes, refusing other machines.

The runs compared are the real results tree (tests/real_results.py) and copies of it; where a test
needs a known change (a slower run, a fixed check), it makes it in the copy's real files."""

from __future__ import annotations

import csv
import json
import random
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from real_results import BENCH_SUBDIR, MACHINES, PROFILE, RealResults

from harness.report.__main__ import main
from harness.report.compare import bench_deltas, conformance_changes, verdict
from harness.report.load import load_bench_csv, load_conformance

A, B = MACHINES

# ---- the verdict rule ----------------------------------------------------------------------


@pytest.mark.parametrize(("old", "old_iqr", "new", "new_iqr", "expected"), [
    (1.00, 0.01, 1.00, 0.01, "unchanged"),
    (1.00, 0.10, 1.15, 0.10, "unchanged"),   # 15 % apart but inside the combined IQRs (0.20)
    (1.00, 0.01, 1.15, 0.01, "slower"),      # same gap, tight spreads: real
    (1.00, 0.01, 0.85, 0.01, "faster"),
    (1.00, 0.00, 1.04, 0.00, "unchanged"),   # under the 5 % floor
    (1.00, 0.00, 1.06, 0.00, "slower"),
    (1.00, None, 0.90, None, "faster"),      # no IQR recorded: the floor alone decides
])
def test_verdict_rule(old, old_iqr, new, new_iqr, expected):
    assert verdict(old, old_iqr, new, new_iqr) == expected


def test_floor_is_configurable():
    assert verdict(1.0, 0.0, 1.08, 0.0, floor=0.10) == "unchanged"
    assert verdict(1.0, 0.0, 1.08, 0.0, floor=0.0) == "slower"


positive = st.floats(min_value=1e-9, max_value=1e3, allow_nan=False)
spread = st.floats(min_value=0, max_value=1e2, allow_nan=False)


@given(old=positive, old_iqr=spread, new=positive, new_iqr=spread,
       scale=st.floats(min_value=1e-3, max_value=1e3))
def test_verdict_does_not_depend_on_the_time_unit(old, old_iqr, new, new_iqr, scale):
    a = verdict(old, old_iqr, new, new_iqr)
    b = verdict(old * scale, old_iqr * scale, new * scale, new_iqr * scale)
    # Rounding can move a case sitting exactly on the tolerance; anything else must agree.
    tolerance = max(old_iqr + new_iqr, 0.05 * old)
    if abs(abs(new - old) - tolerance) > 1e-9 * max(old, new, tolerance):
        assert a == b


@given(median=positive, iqr=spread)
def test_identical_runs_are_unchanged(median, iqr):
    assert verdict(median, iqr, median, iqr) == "unchanged"


# ---- comparing runs -----------------------------------------------------------------------


def rescale(real: RealResults, mid: str, factor) -> None:
    """Every measured median (and its IQR) of ``mid``'s real bench.csv times ``factor(row)``."""
    path = real.bench_csv(mid)
    header, rows = real.bench_header(mid), real.bench_rows(mid)
    for row in rows:
        if row["status"] == "ok":
            f = factor(row)
            row["median_s"] = repr(float(row["median_s"]) * f)
            row["iqr_s"] = repr(float(row["iqr_s"]) * f)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def first_failure(real: RealResults, mid: str) -> tuple[str, str]:
    return next((a["id"], c["check"]) for a in real.conformance(mid)["adapters"] for c in a["checks"]
                if c["status"] == "failed")


def fix_check(real: RealResults, mid: str, adapter: str, check: str) -> None:
    path = real.conformance_path(mid)
    doc = json.loads(path.read_text())
    cell = next(c for a in doc["adapters"] if a["id"] == adapter for c in a["checks"] if c["check"] == check)
    cell.update(status="passed", detail="")
    path.write_text(json.dumps(doc))


def copy_machine(real: RealResults, mid: str, dest: Path) -> Path:
    shutil.copytree(real.machine(mid), dest)
    return dest


SLOWER = 1.4


@pytest.fixture()
def runs(real_results, tmp_path) -> tuple[Path, Path, tuple[str, str]]:
    """A's real run as OLD, and a results root whose A is that run 40 % slower with the first failing
    check fixed (NEW)."""
    old = copy_machine(real_results, A, tmp_path / "old" / A)
    new = real_results.copy(tmp_path / "results")
    rescale(new, A, lambda row: SLOWER)
    fixed = first_failure(real_results, A)
    fix_check(new, A, *fixed)
    return old, new.root, fixed


def _slower_if_real(old: dict, new: dict) -> str:
    """The documented rule for one row scaled by SLOWER: slower unless the IQRs cover the change."""
    tolerance = max(old["iqr_s"] + new["iqr_s"], 0.05 * old["median_s"])
    return "slower" if new["median_s"] - old["median_s"] > tolerance else "unchanged"


def test_same_machine_prints_per_row_verdicts_and_writes_compare_md(runs, capsys):
    old, root, (adapter, check) = runs
    assert (root / B).is_dir()  # another machine in the root: must not be picked
    assert main(["--results", str(root), "--compare", str(old)]) == 0
    out = capsys.readouterr().out
    old_rows = [r for r in load_bench_csv(old / BENCH_SUBDIR / "bench.csv") if r["status"] == "ok"]
    new_rows = {(r["adapter"], r["pass"], r["vocab"], r["dim"], r["n_ids"], r["distribution"]): r
                for r in load_bench_csv(root / A / BENCH_SUBDIR / "bench.csv")}
    expected = [_slower_if_real(r, new_rows[(r["adapter"], r["pass"], r["vocab"], r["dim"], r["n_ids"],
                                             r["distribution"])]) for r in old_rows]
    assert expected.count("slower") > len(expected) // 2  # the real spreads are tight enough to see it
    rows = [line for line in out.splitlines() if re.search(r"\| (slower|faster|unchanged) +\|$", line)]
    assert len(rows) == len(old_rows)
    assert sorted(r.split("|")[-2].strip() for r in rows) == sorted(expected)
    assert {r.split("|")[-3].strip() for r in rows} == {f"{SLOWER:.3f}"}
    # Only NEW's bench.csv was rescaled: its raw rounds are not behind its medians any more, so no row has
    # samples on both sides and every verdict is the IQR rule's.
    assert {r.split("|")[-4].strip() for r in rows} == {"IQR rule"}
    assert f"{expected.count('slower')} slower, 0 faster" in out
    assert f"- new: `{root / A}`" in out
    assert (root / "COMPARE.md").read_text() == out
    # The conformance change: the failing check was fixed in the new run.
    assert re.search(rf"\| {re.escape(adapter)} \| {re.escape(check)} \| failed \| passed \|", out)


def test_noise_alone_is_unchanged(real_results, tmp_path, capsys):
    old = copy_machine(real_results, A, tmp_path / "old" / A)
    new = real_results.copy(tmp_path / "results")
    jitter = random.Random(9)
    rescale(new, A, lambda row: jitter.uniform(0.97, 1.03))  # the same run, ±3 % of noise
    assert main(["--results", str(new.root), "--compare", str(old)]) == 0
    out = capsys.readouterr().out
    measured = sum(1 for r in real_results.bench_rows(A) if r["status"] == "ok")
    assert f"0 slower, 0 faster, 0 status changed, {measured} unchanged" in out
    assert "No check changed status." in out


def test_a_run_against_itself_is_indistinguishable_by_its_rounds(real_results, tmp_path, capsys):
    """The real tiny run's raw files hold every measured row's rounds: compared with an untouched copy of
    itself, each row's interval (two resamplings of the same rounds) straddles 1."""
    old = copy_machine(real_results, A, tmp_path / "old" / A)
    new = real_results.copy(tmp_path / "results")
    assert main(["--results", str(new.root), "--compare", str(old)]) == 0
    out = capsys.readouterr().out
    measured = sum(1 for r in real_results.bench_rows(A) if r["status"] == "ok")
    assert f"0 slower, 0 faster, 0 status changed, 0 unchanged, {measured} indistinguishable" in out
    assert f"Basis: {measured} rows by the bootstrap 95 % interval, 0 by the IQR rule" in out
    rows = [line for line in out.splitlines() if line.endswith("| indistinguishable |")]
    assert len(rows) == measured
    for line in rows:
        ratio, low, high = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", line.split("|")[-3].strip()).groups()
        assert ratio == "1.000" and float(low) <= 1 <= float(high)


def test_different_machines_are_refused_unless_forced(runs, real_results, capsys):
    old, root, _ = runs
    shutil.rmtree(root / A)
    assert main(["--results", str(root), "--compare", str(old)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert captured.out == ""
    assert len(err) == 1 and "refusing to compare different machines" in err[0]
    assert f"'{A}'" in err[0] and f"'{B}'" in err[0] and "--force" in err[0]
    assert not (root / "COMPARE.md").exists()

    assert main(["--results", str(root), "--compare", str(old), "--force"]) == 0
    out = capsys.readouterr().out
    assert "different machines, forced" in out
    # The two machines measured different adapters: every row is on one side only.
    a_rows, b_rows = len(real_results.bench_rows(A)), len(real_results.bench_rows(B))
    assert f"0 unchanged, 0 indistinguishable, 0 not measured, {b_rows} added, {a_rows} removed." in out


def test_copied_folder_still_matches_by_recorded_machine_id(runs, tmp_path, capsys):
    old, root, _ = runs
    renamed = tmp_path / "nightly-2026-11-20"
    shutil.copytree(old, renamed)
    assert main(["--results", str(root), "--compare", str(renamed)]) == 0
    assert f"- machine: `{A}`" in capsys.readouterr().out


def test_old_as_a_results_root_or_a_single_file(runs, capsys):
    old, root, (adapter, check) = runs
    assert main(["--results", str(root), "--compare", str(old.parent)]) == 0
    assert "| slower" in capsys.readouterr().out
    assert main(["--results", str(root), "--compare", str(old / "conformance.json")]) == 0
    out = capsys.readouterr().out
    assert "Not compared: the old side has no bench.csv." in out
    assert f"| {adapter} | {check} | failed | passed |" in out
    for name in ("bench.csv", "bench_meta.json"):
        assert main(["--results", str(root), "--compare", str(old / BENCH_SUBDIR / name)]) == 0
        out = capsys.readouterr().out
        assert "| slower" in out and "Not compared: the old side has no conformance.json." in out
        assert f"- machine: `{A}`" in out  # from bench_meta.json, not the folder name profile-tiny


def test_old_machine_with_only_a_profile_benchmark_is_one_machine(runs, capsys):
    """The bench writes every profile but the full one to profile-<name>/: such a machine folder is a
    machine, not a results root whose machines would be profile-tiny and tmp."""
    old, root, _ = runs
    for name in ("conformance.json", "conformance.md"):
        (old / name).unlink()
    assert (old / "tmp").is_dir()  # the conformance run's logs (it had failures), beside the bench folder
    assert main(["--results", str(root), "--compare", str(old)]) == 0
    captured = capsys.readouterr()
    assert f"- old: `{old}`" in captured.out and "| slower" in captured.out
    assert "skipped:" not in captured.err


def test_new_can_be_named_explicitly(runs, real_results, tmp_path, capsys):
    old, root, _ = runs
    elsewhere = real_results.copy(tmp_path / "elsewhere")
    rescale(elsewhere, A, lambda row: 0.5)
    assert main(["--results", str(root), "--compare", str(old), "--new", str(elsewhere.machine(A))]) == 0
    assert "| faster" in capsys.readouterr().out and "| slower" not in (root / "COMPARE.md").read_text()


def test_ambiguous_new_root_is_refused(runs, real_results, capsys):
    old, root, _ = runs
    shutil.rmtree(root / A)
    shutil.copytree(real_results.machine(B), root / "real-c")
    assert main(["--results", str(root), "--compare", str(old)]) == 2
    assert f"holds several machines ({B}, real-c)" in capsys.readouterr().err


def test_corrupt_old_bench_is_named_and_conformance_still_compared(runs, capsys):
    old, root, _ = runs
    (old / BENCH_SUBDIR / "bench.csv").write_text("adapter,framework\nnumpy-gather,numpy\n")
    assert main(["--results", str(root), "--compare", str(old)]) == 3
    captured = capsys.readouterr()
    assert f"{old / BENCH_SUBDIR / 'bench.csv'}: missing column(s)" in captured.err
    assert "Not compared: the old side has no bench.csv." in captured.out
    assert "| failed | passed |" in captured.out


def test_status_changes_added_and_removed_rows(real_results):
    old_rows = load_bench_csv(real_results.bench_csv(A))
    new_rows = [dict(r) for r in old_rows[1:]]  # first row removed
    ok = next(r for r in new_rows if r["status"] == "ok")
    ok.update(status="error", median_s=None, skip_reason="RuntimeError: boom")
    new_rows.append(dict(old_rows[5], vocab=123))  # a size the old run did not have
    deltas = {d.verdict: d for d in bench_deltas(old_rows, new_rows)}
    assert deltas["removed"].new is None and deltas["removed"].old is old_rows[0]
    assert deltas["added"].old is None and deltas["added"].new["vocab"] == 123
    changed = deltas["status changed"]
    assert (changed.old["status"], changed.new["status"]) == ("ok", "error") and changed.ratio is None
    assert deltas["not measured"].old["status"] == deltas["not measured"].new["status"] == "skipped"


def test_conformance_changes_include_whole_adapter_skips(real_results):
    # A real whole-adapter skip (B's plug-in needs a framework that is not installed), then installed:
    old = load_conformance(real_results.conformance_path(B))
    [skipped] = [a for a in old["adapters"] if a["skip_reason"]]
    installed = json.loads(json.dumps(old))
    [entry] = [a for a in installed["adapters"] if a["id"] == skipped["id"]]
    entry.update(skip_reason=None, checks=[dict(c, status="passed", detail="") for c in entry["checks"]])
    changes = [(c.adapter, c.check, c.old, c.new) for c in conformance_changes(old, installed)]
    assert (skipped["id"], "(adapter)", "skipped", "absent") in changes
    assert sum(1 for c in changes if c[0] == skipped["id"] and c[2:] == ("skipped", "passed")) == len(
        skipped["checks"])
    # And the other way: an adapter of A that the new run could not load.
    old = load_conformance(real_results.conformance_path(A))
    new = json.loads(json.dumps(old))
    gone = new["adapters"][2]
    gone.update(skip_reason="numpy-plugin is not installed", checks=[])
    changes = conformance_changes(old, new)
    assert (gone["id"], "(adapter)", "absent", "skipped") in [(c.adapter, c.check, c.old, c.new) for c in changes]
    lost = sum(1 for c in changes if c.adapter == gone["id"] and c.new == "absent")
    assert lost == len(old["adapters"][2]["checks"]) > 0


def test_compare_only_options_need_compare(runs, capsys):
    _, root, _ = runs
    with pytest.raises(SystemExit) as info:
        main(["--results", str(root), "--force"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["--results", str(root), "--compare", "x", "--floor", "2"])
    assert "--floor must be a fraction" in capsys.readouterr().err


def test_missing_old_path_is_a_usage_error(runs, capsys):
    _, root, _ = runs
    assert main(["--results", str(root), "--compare", str(root / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_compare_refuses_different_profiles_unless_forced(real_results, tmp_path, capsys):
    old = copy_machine(real_results, A, tmp_path / "old" / A)
    new = real_results.copy(tmp_path / "results")
    meta = new.bench_meta(A)
    meta["profile"] = "full"
    new.bench_meta_path(A).write_text(json.dumps(meta))
    root = new.root
    assert main(["--results", str(root), "--compare", str(old)]) == 2
    err = capsys.readouterr().err
    assert f"refusing to compare benchmark profiles '{PROFILE}' (old) and 'full' (new)" in err
    assert err.strip().count("\n") == 0 and not (root / "COMPARE.md").exists()
    assert main(["--results", str(root), "--compare", str(old), "--force"]) == 3  # written, with a warning
    assert f"forced: old is profile '{PROFILE}', new is profile 'full'" in (root / "COMPARE.md").read_text()


@pytest.mark.parametrize(("text", "why"), [
    ("{not json", "unreadable (Expecting property name enclosed in double quotes"),
    ('{"benchmarks": [{"stats": {}}]}', "not a pytest-benchmark file (KeyError: 'extra_info')"),
])
def test_a_raw_file_without_rounds_is_named_with_why(tmp_path, text, why):
    from harness.report.compare import _raw_samples

    path = tmp_path / "bench-part.json"
    path.write_text(text, encoding="utf-8")
    problems = []
    assert _raw_samples(path, problems) == {}
    (line,) = problems
    assert line.startswith(f"{path}: {why}") and line.endswith("compared by the IQR rule, without an interval")


def test_a_single_bench_csv_is_named_by_its_folder(real_results, tmp_path):
    from harness.report.compare import load_side

    folder = tmp_path / "some-machine"
    folder.mkdir()
    shutil.copy(real_results.bench_csv(A), folder / "bench.csv")  # no bench_meta.json beside it
    problems = []
    side = load_side(folder / "bench.csv", problems)
    assert side.machine_id == "some-machine" and side.bench_rows and problems == []
