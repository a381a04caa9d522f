"""The --compare verdict rules (harness.report.compare) at their boundaries, with numbers a double holds
exactly, so "at the tolerance" really is at it. Without per-round samples (the IQR rule):

    tolerance = max(old_iqr + new_iqr, floor * old_median); |new - old| <= tolerance: unchanged.

With them, the bootstrap interval [low, high] of new/old median: indistinguishable when low <= 1 <= high,
slower when low > 1 and ratio > 1 + floor, faster when high < 1 and ratio < 1 - floor, else unchanged."""

import math

import pytest

from harness.report.compare import (
    BASIS_BOOTSTRAP,
    BASIS_IQR,
    DEFAULT_FLOOR,
    BenchDelta,
    bench_deltas,
    conformance_changes,
    interval_verdict,
    verdict,
)
from harness.schema import bench_csv_text


def up(x: float) -> float:
    return math.nextafter(x, math.inf)


def down(x: float) -> float:
    return math.nextafter(x, -math.inf)


@pytest.mark.parametrize(("new", "expected"), [
    (1.0625, "unchanged"),  # slower by exactly the floor (1/16 of 1.0)
    (up(1.0625), "slower"),
    (0.9375, "unchanged"),  # faster by exactly the floor
    (down(0.9375), "faster"),
    (1.0, "unchanged"),
])
def test_the_relative_floor_at_and_beyond(new, expected):
    assert verdict(1.0, 0.0, new, 0.0, floor=0.0625) == expected


@pytest.mark.parametrize(("new", "expected"), [
    (1.25, "unchanged"),  # 0.125 + 0.125 of combined IQR: exactly at it
    (up(1.25), "slower"),
    (0.75, "unchanged"),
    (down(0.75), "faster"),
])
def test_the_combined_iqr_at_and_beyond(new, expected):
    assert verdict(1.0, 0.125, new, 0.125, floor=0.0625) == expected


def test_the_larger_of_iqr_and_floor_is_the_tolerance():
    # IQRs 0.0625 in all, floor 0.25 of 1.0: the floor rules
    assert verdict(1.0, 0.03125, 1.25, 0.03125, floor=0.25) == "unchanged"
    assert verdict(1.0, 0.03125, up(1.25), 0.03125, floor=0.25) == "slower"
    # IQRs 0.5 in all, floor 0.25: the IQRs rule
    assert verdict(1.0, 0.25, 1.5, 0.25, floor=0.25) == "unchanged"
    assert verdict(1.0, 0.25, up(1.5), 0.25, floor=0.25) == "slower"
    # only one side's IQR counts as much as both
    assert verdict(1.0, 0.5, 1.5, None, floor=0.0) == "unchanged"
    assert verdict(1.0, None, 1.5, 0.5, floor=0.0) == "unchanged"
    assert verdict(1.0, None, up(1.5), 0.5, floor=0.0) == "slower"


def test_the_floor_is_relative_to_the_old_median():
    # 5 % of 20 is 1 (0.05 * 20 rounds to exactly 1.0): 21 is at it, a hair more is beyond
    assert DEFAULT_FLOOR == 0.05
    assert verdict(20.0, None, 21.0, None) == "unchanged"
    assert verdict(20.0, None, up(21.0), None) == "slower"
    assert verdict(20.0, None, 19.0, None) == "unchanged"
    assert verdict(20.0, None, down(19.0), None) == "faster"
    # relative to old, not new: 5 % of 21 (1.05) would call 20 -> 21.04 unchanged too, but 20 -> 21.04 is not
    assert verdict(20.0, None, 21.04, None) == "slower"


def test_a_zero_floor_and_no_spread_call_any_difference():
    assert verdict(1.0, 0.0, up(1.0), 0.0, floor=0.0) == "slower"
    assert verdict(1.0, 0.0, down(1.0), 0.0, floor=0.0) == "faster"
    assert verdict(1.0, 0.0, 1.0, 0.0, floor=0.0) == "unchanged"


def _row(vocab, status="ok", median=1.0, iqr=0.0, adapter="a"):
    return {"adapter": adapter, "device": "cpu", "dtype": "float32", "index_dtype": "int32", "pass": "forward",
            "vocab": vocab, "dim": 8, "n_ids": 16, "distribution": "uniform", "status": status,
            "median_s": median if status == "ok" else None, "iqr_s": iqr if status == "ok" else None}


def test_bench_deltas_one_verdict_per_key_in_order():
    old = [_row(1), _row(2), _row(3), _row(4, "skipped"), _row(5, "error"), _row(6)]
    new = [_row(1, median=1.0625), _row(2, median=up(1.0625)), _row(3, median=down(0.9375)), _row(4, "skipped"),
           _row(5, "ok"), _row(7)]
    deltas = bench_deltas(old, new, floor=0.0625)
    assert [(d.key[5], d.verdict) for d in deltas] == [
        ("1", "unchanged"), ("2", "slower"), ("3", "faster"), ("4", "not measured"), ("5", "status changed"),
        ("6", "removed"), ("7", "added")]
    assert deltas[0].ratio == 1.0625 and deltas[3].ratio is None and deltas[4].ratio is None
    assert deltas[5].new is None and deltas[6].old is None
    assert [d.verdict for d in bench_deltas(old[:1], new[:1])] == ["slower"]  # default floor 5 %: 6.25 % beyond


def test_bench_deltas_pass_both_iqrs_and_the_floor_to_the_rule():
    old = [_row(1, iqr=0.25), _row(2), _row(3, median=2.0)]
    new = [_row(1, median=1.25), _row(2, median=1.25, iqr=0.25), _row(3, median=2.4)]
    # 1 and 2: 0.25 apart, inside the one IQR of 0.25 (the floor is 0.0625); 3: 0.4 apart, inside 0.25 x 2.0
    assert [d.verdict for d in bench_deltas(old, new, floor=0.25)] == ["unchanged", "unchanged", "unchanged"]
    assert [d.verdict for d in bench_deltas(old, new, floor=0.0625)] == ["unchanged", "unchanged", "slower"]


def test_the_ratio_is_new_over_old_only_when_both_measured():
    assert BenchDelta((), "slower", _row(1, median=2.0), _row(1, median=3.0)).ratio == 1.5
    assert BenchDelta((), "status changed", _row(1, median=2.0), _row(1, "error")).ratio is None
    assert BenchDelta((), "added", None, _row(1)).ratio is None


@pytest.mark.parametrize(("ratio", "low", "high", "expected"), [
    (1.0, 1.0, 1.0, "indistinguishable"),            # an interval that is exactly 1
    (2.0, 1.0, 3.0, "indistinguishable"),            # low end exactly 1: not above it
    (0.5, 0.25, 1.0, "indistinguishable"),           # high end exactly 1: not below it
    (1.5, up(1.0), 3.0, "slower"),
    (0.5, 0.25, down(1.0), "faster"),
    (1.0625, up(1.0), 2.0, "unchanged"),             # above 1, but the ratio is exactly at the floor
    (up(1.0625), up(1.0), 2.0, "slower"),
    (0.9375, 0.5, down(1.0), "unchanged"),           # below 1, the ratio exactly at the floor
    (down(0.9375), 0.5, down(1.0), "faster"),
    (1.03, 1.01, 1.05, "unchanged"),                 # a real difference, but a negligible one
    (0.5, up(1.0), 2.0, "unchanged"),                # interval and ratio disagree: not a change
    (1.5, 0.5, down(1.0), "unchanged"),
])
def test_the_interval_rule_at_and_beyond(ratio, low, high, expected):
    assert interval_verdict(ratio, low, high, floor=0.0625) == expected


def _timed(vocab, samples, median=None):
    return dict(_row(vocab, median=median if median is not None else sorted(samples)[len(samples) // 2]),
                samples=samples)


def test_bench_deltas_use_the_interval_when_both_sides_have_two_rounds():
    # Rounds without spread: every resampled median is the median, so the interval is the ratio itself.
    old = [_timed(1, [1.0, 1.0]), _timed(2, [1.0, 1.0]), _timed(3, [1.0, 1.0, 1.0]), _timed(4, [1.0, 1.0]),
           _timed(5, [1.0]), _row(6), _timed(7, [1.0, 1.0])]
    new = [_timed(1, [1.0625, 1.0625]), _timed(2, [up(1.0625)] * 2), _timed(3, [1.0, 3.0, 1.0]),
           _timed(4, [0.5, 0.5]), _timed(5, [2.0, 2.0]), _timed(6, [2.0, 2.0]), _timed(7, [2.0])]
    got = [(d.verdict, d.basis, d.ci) for d in bench_deltas(old, new, floor=0.0625)]
    assert got == [
        ("unchanged", BASIS_BOOTSTRAP, (1.0625, 1.0625)),  # at the floor
        ("slower", BASIS_BOOTSTRAP, (up(1.0625), up(1.0625))),
        ("indistinguishable", BASIS_BOOTSTRAP, (1.0, 3.0)),  # resampled medians 1 or 3: low end exactly 1
        ("faster", BASIS_BOOTSTRAP, (0.5, 0.5)),
        ("slower", BASIS_IQR, None),  # one round on the old side: the IQR rule (no IQR: 100 % > floor)
        ("slower", BASIS_IQR, None),  # no samples at all on the old side
        ("slower", BASIS_IQR, None),  # one round on the new side
    ]
    # The same medians and spreads that the interval calls indistinguishable, the IQR rule calls slower:
    assert verdict(1.0, 0.0, 1.0, 0.0, floor=0.0625) == "unchanged" and got[2][0] != "slower"
    assert [d.basis for d in bench_deltas([_row(1, "skipped")], [_timed(1, [1.0, 1.0])])] == [None]


def _conformance(*adapters):
    return {"adapters": list(adapters)}


def test_conformance_changes_list_only_what_moved():
    old = _conformance({"id": "a", "device": "cpu", "checks": [{"check": "x", "status": "passed"},
                                                               {"check": "y", "status": "failed"}]},
                       {"id": "b-cuda", "device": "cuda", "skip_reason": "no GPU", "checks": []})
    new = _conformance({"id": "a", "device": "cpu", "checks": [{"check": "x", "status": "passed"},
                                                               {"check": "y", "status": "passed"},
                                                               {"check": "z", "status": "xfailed"}]},
                       {"id": "b-cuda", "device": "cuda", "checks": [{"check": "x", "status": "passed"}]})
    got = [(c.adapter, c.check, c.old, c.new) for c in conformance_changes(old, new)]
    assert got == [("a", "y", "failed", "passed"), ("b-cuda", "(adapter)", "skipped", "absent"),
                   ("a", "z", "absent", "xfailed"), ("b-cuda", "x", "absent", "passed")]
    assert conformance_changes(old, old) == []
    assert conformance_changes(None, None) == []


def test_not_measured_rows_keep_both_sides():
    (delta,) = bench_deltas([_row(4, "skipped")], [_row(4, "skipped")])
    assert delta.verdict == "not measured" and delta.old["status"] == delta.new["status"] == "skipped"


def test_a_gpu_adapter_whose_id_does_not_say_cuda_is_labelled_with_its_device():
    old = _conformance({"id": "acme", "device": "cuda", "checks": [{"check": "x", "status": "failed"}]},
                       {"id": "plain", "checks": [{"check": "x", "status": "failed"}]})
    new = _conformance({"id": "acme", "device": "cuda", "checks": [{"check": "x", "status": "passed"}]},
                       {"id": "plain", "device": None, "checks": [{"check": "x", "status": "passed"}]})
    assert [c.adapter for c in conformance_changes(old, new)] == ["acme (cuda)", "plain"]


# ---- the rendered comparison, written out by hand -------------------------------------------------


def _side(label, machine_id, rows=None, conformance=None):
    from pathlib import Path

    from harness.report.compare import Side
    from harness.report.load import MachineResults

    return Side(label, machine_id, MachineResults(machine_id, Path(label), conformance=conformance,
                                                  bench_rows=rows))


def _cells(text: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table that starts with ``header``'s first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} "))
    body = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        body.append([c.strip() for c in line.strip().strip("|").split("|")])
    return body


def test_render_by_hand():
    from harness.views.compare_md import render

    old_rows = [_row(4), _row(8), _row(16), _row(32, iqr=0.25), _row(64), _row(128, "skipped"), _row(256),
                _row(1024)]
    new_rows = [_row(4, median=3.0), _row(8, median=2.0, iqr=0.5), _row(16, median=0.5), _row(32),
                _row(64, "error"), _row(128, "skipped"), _row(512), _row(1024, median=0.25)]
    conf_old = _conformance({"id": "a", "device": "cpu", "checks": [{"check": "x", "status": "failed"}]})
    conf_new = _conformance({"id": "a", "device": "cpu", "checks": [{"check": "x", "status": "passed"}]})
    old, new = _side("old/box", "box", old_rows, conf_old), _side("results/box", "box", new_rows, conf_new)
    deltas = bench_deltas(old_rows, new_rows, floor=0.0625)
    text = render(old, new, deltas, conformance_changes(conf_old, conf_new), 0.0625, ["a problem"])
    assert text.splitlines()[:17] == [
        "# embedding-harness comparison", "", "- old: `old/box`", "- new: `results/box`", "- machine: `box`", "",
        "Verdict per benchmark row: ratio = new / old median. With per-round samples on both sides (basis "
        "bootstrap 95 %), the row is indistinguishable when the 95 % bootstrap interval of the ratio contains 1; "
        "slower or faster when it excludes 1 and the ratio is beyond 1 ± 6%; else unchanged. Without them (IQR "
        "rule): unchanged when |new − old| ≤ max(IQR old + IQR new, 6% of old); else faster or slower.", "",
        "> [!WARNING]", "> - a problem", "",
        "## Benchmarks", "",
        "2 slower, 2 faster, 1 status changed, 1 unchanged, 0 indistinguishable, 1 not measured, 1 added, "
        "1 removed.", "",
        "Basis: 0 rows by the bootstrap 95 % interval, 5 by the IQR rule (no usable per-round samples on both "
        "sides).", ""]
    # slower rows most slowed first, faster rows most sped up first, then the others in verdict order
    key = ["a", "cpu", "forward", "float32", "int32", "uniform"]
    header = next(line for line in text.splitlines() if line.startswith("| adapter | device "))
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "adapter", "device", "pass", "dtype", "index", "distribution", "vocab", "dim", "n_ids", "old", "new", "basis",
        "ratio [95 % interval]", "verdict"]
    assert _cells(text, "adapter") == [
        [*key, "4", "8", "16", "1 s", "3 s", "IQR rule", "3.000", "slower"],
        [*key, "8", "8", "16", "1 s", "2 s ±250 ms", "IQR rule", "2.000", "slower"],
        [*key, "1024", "8", "16", "1 s", "250 ms", "IQR rule", "0.250", "faster"],
        [*key, "16", "8", "16", "1 s", "500 ms", "IQR rule", "0.500", "faster"],
        [*key, "64", "8", "16", "1 s", "error", "—", "—", "status changed"],
        [*key, "32", "8", "16", "1 s ±125 ms", "1 s", "IQR rule", "1.000", "unchanged"],
        [*key, "128", "8", "16", "skipped", "skipped", "—", "—", "not measured"],
        [*key, "512", "8", "16", "—", "1 s", "—", "—", "added"],
        [*key, "256", "8", "16", "1 s", "—", "—", "—", "removed"]]
    assert "| removed        |\n\n## Conformance\n\n" in text  # a blank line after the table
    assert text.split("## Conformance\n\n")[1].splitlines()[0] == "| adapter | check | old    | new    |"
    assert text.split("## Conformance\n\n")[1].splitlines()[2] == "| a       | x     | failed | passed |"
    assert text.endswith("| passed |\n")


def test_render_of_sides_that_lack_something():
    from harness.views.compare_md import render

    conf = _conformance({"id": "a", "checks": [{"check": "x", "status": "passed"}]})
    both = render(_side("o", "box-a", [], conf), _side("n", "box-b", [], conf), [], [], 0.05, [])
    assert "- machine: `box-a` → `box-b` (**different machines, forced**)" in both
    assert "5% of old" in both and "[!WARNING]" not in both
    assert "0 slower, 0 faster, 0 status changed, 0 unchanged, 0 indistinguishable, 0 not measured, 0 added, " \
           "0 removed.\n\nNo benchmark rows.\n" in both
    assert both.endswith("## Conformance\n\nNo check changed status.\n")
    no_bench = render(_side("o", "b", None, conf), _side("n", "b", [], None), [], [], 0.05, [])
    assert no_bench.startswith("# embedding-harness comparison\n")
    assert "## Benchmarks\n\nNot compared: the old side has no bench.csv.\n\n## Conformance" in no_bench
    assert no_bench.endswith("Not compared: the new side has no conformance.json.\n")
    no_new_bench = render(_side("o", "b", [], None), _side("n", "b", None, conf), [], [], 0.05, [])
    assert "Not compared: the new side has no bench.csv." in no_new_bench
    assert "Not compared: the old side has no conformance.json." in no_new_bench


# ---- which two runs: folders and files written here, read in this process ------------------------


def _write_machine(folder, machine_id, median=1.0, profile="quick"):
    """A machine folder with a bench.csv of one measured row, its bench_meta.json and the row's raw
    pytest-benchmark file (three rounds around the median), as a run leaves them."""
    import json

    from harness.bench.rows import COLUMNS

    folder.mkdir(parents=True)
    row = dict.fromkeys(COLUMNS)
    row.update(_row(64, median=median), framework="a", variant="gather", gbps=1.0, part="core", run_id="r1")
    (folder / "bench.csv").write_text(bench_csv_text([row]))
    (folder / "bench_meta.json").write_text(json.dumps({"machine_id": machine_id, "profile": profile}))
    raw = folder / "raw" / "r1" / "bench-core.json"
    raw.parent.mkdir(parents=True)
    samples = [0.99 * median, median, 1.01 * median]
    raw.write_text(json.dumps({"benchmarks": [{"extra_info": _row(64), "stats": {"data": samples}}]}))
    return folder


def test_resolve_picks_the_old_roots_machine_that_new_also_has(tmp_path):
    from harness.report.compare import resolve

    _write_machine(tmp_path / "old" / "box-a", "box-a")
    _write_machine(tmp_path / "old" / "box-b", "box-b", median=2.0)
    _write_machine(tmp_path / "new" / "box-b", "box-b")
    for new_path in (tmp_path / "new", tmp_path / "new" / "box-b"):  # a root, or the machine folder itself
        problems: list[str] = []
        old, new = resolve(tmp_path / "old", new_path, problems, force=False)
        assert (old.machine_id, new.machine_id) == ("box-b", "box-b") and problems == []
        assert old.results.bench_rows[0]["median_s"] == 2.0  # box-b's, not box-a's
        assert new.results.bench_rows[0]["median_s"] == 1.0
        assert (old.label, new.label) == (str(tmp_path / "old" / "box-b"), str(tmp_path / "new" / "box-b"))


def test_resolve_refuses_an_old_root_with_several_machines_the_new_one_also_has(tmp_path):
    from harness.report.compare import CompareRefused, resolve

    for side in ("old", "new"):
        for mid in ("box-a", "box-b"):
            _write_machine(tmp_path / side / mid, mid)
    with pytest.raises(CompareRefused) as err:
        resolve(tmp_path / "old", tmp_path / "new", [], force=False)
    assert str(err.value) == (f"{tmp_path / 'old'}: holds several machines (box-a, box-b) and none matches "
                              "None; point at one results/<machine-id>/ folder")


def test_resolve_picks_the_new_roots_machine_that_old_is(tmp_path):
    from harness.report.compare import resolve

    _write_machine(tmp_path / "old" / "box-b", "box-b", median=2.0)
    _write_machine(tmp_path / "new" / "box-a", "box-a")
    _write_machine(tmp_path / "new" / "box-b", "box-b", median=3.0)
    old, new = resolve(tmp_path / "old" / "box-b", tmp_path / "new", [], force=False)
    assert new.machine_id == "box-b" and new.results.bench_rows[0]["median_s"] == 3.0


def test_an_old_root_with_one_machine_the_new_side_lacks_is_that_machine(tmp_path):
    from harness.report.compare import resolve

    _write_machine(tmp_path / "old" / "box-a", "box-a")
    _write_machine(tmp_path / "new" / "box-b", "box-b")
    old, new = resolve(tmp_path / "old", tmp_path / "new" / "box-b", [], force=True)
    assert (old.machine_id, new.machine_id) == ("box-a", "box-b")


def test_a_conformance_file_is_a_side_of_its_own(tmp_path):
    import json

    from harness.report.compare import resolve

    _write_machine(tmp_path / "new" / "box", "box")
    conformance = tmp_path / "saved" / "conformance.json"
    conformance.parent.mkdir()
    conformance.write_text(json.dumps({"schema": "embedding-harness/conformance/1", "adapters": [],
                                       "machine": {"machine_id": "box"}, "created": "t", "hypothesis_profile": "ci"}))
    old, new = resolve(conformance, tmp_path / "new", [], force=False)
    assert old.label == str(conformance) and old.machine_id == "box" and old.results.conformance["adapters"] == []
    assert old.results.bench_rows is None


def test_problems_of_either_side_are_reported(tmp_path):
    from harness.report.compare import resolve

    for side in ("old", "new"):
        (_write_machine(tmp_path / side / "box", "box") / "bench_meta.json").unlink()
    for old_path in (tmp_path / "old", tmp_path / "old" / "box"):  # a root, or the machine folder
        problems: list[str] = []
        resolve(old_path, tmp_path / "new" / "box", problems, force=False)
        assert [p.split(":")[0] for p in problems] == [str(tmp_path / side / "box" / "bench_meta.json")
                                                       for side in ("old", "new")]


def test_resolve_with_files_labels_the_file_named(tmp_path):
    from harness.report.compare import resolve

    folder = _write_machine(tmp_path / "old" / "renamed-folder", "box")  # the id recorded inside counts
    _write_machine(tmp_path / "new" / "box", "box")
    for named in ("bench.csv", "bench_meta.json"):
        old, new = resolve(folder / named, tmp_path / "new", [], force=False)
        assert old.label == str(folder / named) and old.machine_id == "box" and old.results.bench_rows
        assert new.label == str(tmp_path / "new" / "box")


@pytest.mark.parametrize(("old_name", "message"), [
    ("nope", "{old}: no such file or folder"),
    ("notes.txt", "{old}: expected a conformance.json, a bench.csv or a folder"),
    ("empty", "{old}: holds no readable results"),
])
def test_resolve_refuses_what_holds_no_results(tmp_path, old_name, message):
    from harness.report.compare import CompareRefused, resolve

    _write_machine(tmp_path / "new" / "box", "box")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    old = tmp_path / old_name
    with pytest.raises(CompareRefused) as err:
        resolve(old, tmp_path / "new", [], force=False)
    assert str(err.value) == message.format(old=old)


def test_resolve_refuses_a_new_side_without_results(tmp_path):
    from harness.report.compare import CompareRefused, resolve

    _write_machine(tmp_path / "old" / "box", "box")
    (tmp_path / "new").mkdir()
    with pytest.raises(CompareRefused) as err:
        resolve(tmp_path / "old" / "box", tmp_path / "new", [], force=False)
    assert str(err.value) == f"{tmp_path / 'new'}: holds no readable results"
    bad = tmp_path / "bad" / "bench.csv"  # a file that is not a table
    bad.parent.mkdir()
    bad.write_text("adapter\nx\n")
    with pytest.raises(CompareRefused) as err:
        resolve(tmp_path / "old" / "box", bad, [], force=False)
    assert str(err.value) == f"{bad}: holds no readable results"


def test_a_corrupt_file_named_is_a_problem_and_no_result(tmp_path):
    from harness.report.compare import CompareRefused, resolve

    _write_machine(tmp_path / "new" / "box", "box")
    bad = tmp_path / "bad" / "bench.csv"
    bad.parent.mkdir()
    bad.write_text("adapter,framework\nx,y\n")
    problems: list[str] = []
    with pytest.raises(CompareRefused, match="holds no readable results"):
        resolve(bad, tmp_path / "new", problems, force=False)
    assert len(problems) == 1 and problems[0].startswith(f"{bad}: ")


def test_resolve_refuses_other_machines_and_profiles_unless_forced(tmp_path):
    from harness.report.compare import CompareRefused, resolve

    a = _write_machine(tmp_path / "a", "box-a")
    b = _write_machine(tmp_path / "b", "box-b")
    with pytest.raises(CompareRefused, match=r"^refusing to compare different machines: old is 'box-a'"):
        resolve(a, b, [], force=False)
    old, new = resolve(a, b, [], force=True)
    assert (old.machine_id, new.machine_id) == ("box-a", "box-b")
    full = _write_machine(tmp_path / "full" / "box-a", "box-a", profile="full")
    with pytest.raises(CompareRefused, match=r"^refusing to compare benchmark profiles 'quick' \(old\) and 'full'"):
        resolve(a, full, [], force=False)
    problems: list[str] = []
    resolve(a, full, problems, force=True)
    assert problems == ["forced: old is profile 'quick', new is profile 'full'; differences may come from the "
                        "profiles, not the code"]
    odd = _write_machine(tmp_path / "odd" / "box-a", "box-a", profile=3)  # not a profile name: not compared
    assert resolve(a, odd, [], force=False)[1].machine_id == "box-a"
