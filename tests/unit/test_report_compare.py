"""--compare: noise-aware verdicts per benchmark row, status changes, refusing other machines."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.report.__main__ import main
from harness.report.compare import bench_deltas, conformance_changes, verdict
from harness.report.load import load_bench_csv, load_conformance
from harness.report.sample import write_machine

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


@pytest.fixture()
def runs(tmp_path: Path) -> tuple[Path, Path]:
    """An old run and a new results root for the same machine, the new one 40 % slower."""
    write_machine(tmp_path / "old", "box-a", speed=1.0, seed=0)
    write_machine(tmp_path / "results", "box-a", speed=1.4, seed=5, failing=())
    return tmp_path / "old" / "box-a", tmp_path / "results"


def test_same_machine_prints_per_row_verdicts_and_writes_compare_md(runs, capsys):
    old, root = runs
    write_machine(root, "box-b", speed=0.5)  # another machine in the root: must not be picked
    assert main(["--results", str(root), "--compare", str(old)]) == 0
    out = capsys.readouterr().out
    measured = sum(1 for r in load_bench_csv(old / "bench.csv") if r["status"] == "ok")
    rows = [line for line in out.splitlines() if re.search(r"\| (slower|faster|unchanged) +\|$", line)]
    assert len(rows) == measured and all("| slower" in r for r in rows)
    ratios = [float(r.split("|")[-3]) for r in rows]
    assert all(1.3 < x < 1.5 for x in ratios)
    assert f"{measured} slower, 0 faster" in out
    assert f"- new: `{root / 'box-a'}`" in out
    assert (root / "COMPARE.md").read_text() == out
    # The conformance change: the failing check was fixed in the new run.
    assert re.search(r"\| torch-gather \| gradient\[float64\] \| failed \| passed \|", out)


def test_noise_alone_is_unchanged(tmp_path, capsys):
    write_machine(tmp_path / "old", "box-a", seed=0)
    write_machine(tmp_path / "results", "box-a", seed=9)  # same speed, different ±3 % jitter
    assert main(["--results", str(tmp_path / "results"), "--compare", str(tmp_path / "old")]) == 0
    out = capsys.readouterr().out
    assert "0 slower, 0 faster, 0 status changed" in out
    assert "No check changed status." in out


def test_different_machines_are_refused_unless_forced(runs, tmp_path, capsys):
    old, root = runs
    shutil.rmtree(root / "box-a")
    write_machine(root, "box-b", speed=0.5)
    assert main(["--results", str(root), "--compare", str(old)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert captured.out == ""
    assert len(err) == 1 and "refusing to compare different machines" in err[0]
    assert "'box-a'" in err[0] and "'box-b'" in err[0] and "--force" in err[0]
    assert not (root / "COMPARE.md").exists()

    assert main(["--results", str(root), "--compare", str(old), "--force"]) == 0
    out = capsys.readouterr().out
    assert "different machines, forced" in out and "| faster" in out


def test_copied_folder_still_matches_by_recorded_machine_id(runs, tmp_path, capsys):
    old, root = runs
    renamed = tmp_path / "nightly-2026-11-20"
    shutil.copytree(old, renamed)
    assert main(["--results", str(root), "--compare", str(renamed)]) == 0
    assert "- machine: `box-a`" in capsys.readouterr().out


def test_old_as_a_results_root_or_a_single_file(runs, tmp_path, capsys):
    old, root = runs
    assert main(["--results", str(root), "--compare", str(old.parent)]) == 0
    assert "| slower" in capsys.readouterr().out
    assert main(["--results", str(root), "--compare", str(old / "conformance.json")]) == 0
    out = capsys.readouterr().out
    assert "Not compared: the old side has no bench.csv." in out
    assert "| torch-gather | gradient[float64] | failed | passed |" in out
    for name in ("bench.csv", "bench_meta.json"):
        assert main(["--results", str(root), "--compare", str(old / name)]) == 0
        out = capsys.readouterr().out
        assert "| slower" in out and "Not compared: the old side has no conformance.json." in out


def test_new_can_be_named_explicitly(runs, tmp_path, capsys):
    old, root = runs
    write_machine(tmp_path / "elsewhere", "box-a", speed=0.5, seed=3)
    assert main(["--results", str(root), "--compare", str(old), "--new", str(tmp_path / "elsewhere")]) == 0
    assert "| faster" in capsys.readouterr().out and "| slower" not in (root / "COMPARE.md").read_text()


def test_ambiguous_new_root_is_refused(runs, capsys):
    old, root = runs
    shutil.rmtree(root / "box-a")
    write_machine(root, "box-b")
    write_machine(root, "box-c")
    assert main(["--results", str(root), "--compare", str(old)]) == 2
    assert "holds several machines (box-b, box-c)" in capsys.readouterr().err


def test_corrupt_old_bench_is_named_and_conformance_still_compared(runs, capsys):
    old, root = runs
    (old / "bench.csv").write_text("adapter,framework\nnumpy-gather,numpy\n")
    assert main(["--results", str(root), "--compare", str(old)]) == 3
    captured = capsys.readouterr()
    assert f"{old / 'bench.csv'}: missing column(s)" in captured.err
    assert "Not compared: the old side has no bench.csv." in captured.out
    assert "| failed | passed |" in captured.out


def test_status_changes_added_and_removed_rows(tmp_path):
    folder = write_machine(tmp_path, "box")
    old_rows = load_bench_csv(folder / "bench.csv")
    new_rows = [dict(r) for r in old_rows[1:]]  # first row removed
    ok = next(r for r in new_rows if r["status"] == "ok")
    ok.update(status="error", median_s=None, skip_reason="RuntimeError: boom")
    new_rows.append(dict(old_rows[5], vocab=123))  # a size the old run did not have
    deltas = {d.verdict: d for d in bench_deltas(old_rows, new_rows)}
    assert deltas["removed"].new is None and deltas["removed"].old is old_rows[0]
    assert deltas["added"].old is None and deltas["added"].new["vocab"] == 123
    changed = deltas["status changed"]
    assert (changed.old["status"], changed.new["status"]) == ("ok", "error") and changed.ratio is None


def test_conformance_changes_include_whole_adapter_skips(tmp_path):
    folder = write_machine(tmp_path, "box")
    old = load_conformance(folder / "conformance.json")
    new = json.loads(json.dumps(old))
    torch = new["adapters"][2]
    torch.update(skip_reason="torch is not installed", checks=[])
    changes = conformance_changes(old, new)
    assert ("torch-gather", "(adapter)", "absent", "skipped") in [(c.adapter, c.check, c.old, c.new)
                                                                 for c in changes]
    assert sum(1 for c in changes if c.adapter == "torch-gather" and c.new == "absent") == 10


def test_compare_only_options_need_compare(runs, capsys):
    _, root = runs
    with pytest.raises(SystemExit) as info:
        main(["--results", str(root), "--force"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["--results", str(root), "--compare", "x", "--floor", "2"])
    assert "--floor must be a fraction" in capsys.readouterr().err


def test_missing_old_path_is_a_usage_error(runs, capsys):
    _, root = runs
    assert main(["--results", str(root), "--compare", str(root / "nope")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_compare_refuses_different_profiles_unless_forced(tmp_path, capsys):
    old = write_machine(tmp_path / "old", "same-box")
    root = tmp_path / "results"
    new = write_machine(root, "same-box")
    meta = json.loads((new / "bench_meta.json").read_text())
    meta["profile"] = "full"
    (new / "bench_meta.json").write_text(json.dumps(meta))
    assert main(["--results", str(root), "--compare", str(old)]) == 2
    err = capsys.readouterr().err
    assert "refusing to compare benchmark profiles 'quick' (old) and 'full' (new)" in err
    assert err.strip().count("\n") == 0 and not (root / "COMPARE.md").exists()
    assert main(["--results", str(root), "--compare", str(old), "--force"]) == 3  # written, with a warning
    assert "forced: old is profile 'quick', new is profile 'full'" in (root / "COMPARE.md").read_text()
