"""Reading results folders back: what the real writers produce loads typed; bad files become one
named line each. Every test reads the real results tree (tests/real_results.py) or a copy of it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from real_results import BENCH_SUBDIR, MACHINES, PROFILE

from harness.errors import CorruptResults
from harness.report.load import (
    bench_key,
    load_bench_csv,
    load_conformance,
    load_machine,
    load_root,
)

A, B = MACHINES


def _single_lines(problems: list[str]) -> None:
    assert problems and all("\n" not in p for p in problems)


def test_real_tree_loads_cleanly_and_typed(real_results):
    machines, problems = load_root(real_results.root)
    assert problems == []
    assert [m.machine_id for m in machines] == list(MACHINES)
    for machine in machines:
        mid = machine.machine_id
        assert machine.declared_machine_id() == mid
        assert machine.conformance == real_results.conformance(mid)
        raw = real_results.bench_rows(mid)
        assert len(machine.bench_rows) == len(raw) == len({bench_key(r) for r in raw})  # nothing lost
        assert machine.bench_subdir == f"{BENCH_SUBDIR}/"  # the tiny profile's own folder
        assert [p.name for p in machine.plots] == [p.name for p in real_results.plots(mid)]
        assert machine.has_bench_md and machine.bench_meta["profile"] == PROFILE
    one = machines[0]
    ok = next(r for r in one.bench_rows if r["status"] == "ok")
    skipped = next(r for r in one.bench_rows if r["status"] == "skipped")
    assert isinstance(ok["vocab"], int) and isinstance(ok["median_s"], float) and ok["median_s"] > 0
    assert skipped["median_s"] is None and skipped["gbps"] is None and skipped["skip_reason"]
    raw_ok = next(r for r in real_results.bench_rows(A) if bench_key(r) == bench_key(ok))
    assert ok["median_s"] == float(raw_ok["median_s"]) and ok["vocab"] == int(raw_ok["vocab"])
    error = next(r for r in machines[1].bench_rows if r["status"] == "error")
    assert error["median_s"] is None and error["skip_reason"].startswith("RuntimeError")


def test_truncated_conformance_json_is_named_and_the_rest_still_loads(real_tree):
    path = real_tree.conformance_path(B)
    path.write_text(path.read_text()[:500])
    machines, problems = load_root(real_tree.root)
    _single_lines(problems)
    assert len(problems) == 1 and str(path) in problems[0] and "not valid JSON" in problems[0]
    two = machines[1]
    assert two.conformance is None and two.bench_rows  # bench of the same machine survives
    assert machines[0].conformance is not None


def _pop_first(key):
    """Drop ``key`` from the first object of the real document that has it (a renamed key)."""
    def mutate(d):
        for adapter in d["adapters"]:
            for obj in (adapter, *adapter["checks"]):
                if key in obj:
                    obj.pop(key)
                    return
        raise AssertionError(f"no {key!r} in the real conformance.json")
    return mutate


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d.update(schema="embedding-harness/conformance/2"), "unsupported schema"),
    (lambda d: d.update(adapters={"not": "a list"}), "'adapters'"),
    (lambda d: d["adapters"][0].pop("id"), "no string 'id'"),
    (lambda d: d["adapters"][1]["checks"][0].update(status="exploded"), "status 'exploded'"),
    (lambda d: d["adapters"][0].update(declared=["raise"]), "'declared' is not an object"),
    # What the report reads must be there: a key the writer renamed is refused, not skipped.
    (lambda d: d.pop("created"), "has no key 'created'"),
    (lambda d: d.pop("machine"), "has no key 'machine'"),
    (lambda d: d["adapters"][0].pop("checks"), "adapter 'numpy-gather': has no key 'checks'"),
    (_pop_first("skip_reason"), "has no key 'skip_reason'"),
    (_pop_first("detail"), "check 'forward[float16]': has no key 'detail'"),
    (lambda d: d["adapters"][0]["checks"][0].update(examples="12"), "'examples' is str, not a number or null"),
])
def test_conformance_schema_violations_are_rejected(real_tree, mutate, expected):
    path = real_tree.conformance_path(A)
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(CorruptResults, match=expected.replace("[", r"\[").replace("]", r"\]")) as info:
        load_conformance(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def _rewrite_csv(path: Path, transform) -> None:
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    header, rows = transform(list(rows[0].keys()), rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())


def test_csv_with_missing_columns_is_rejected_by_name(real_tree):
    path = real_tree.bench_csv(A)
    _rewrite_csv(path, lambda header, rows: ([h for h in header if h not in ("median_s", "status")], rows))
    machines, problems = load_root(real_tree.root)
    assert len(problems) == 1 and str(path) in problems[0]
    assert "missing column(s) median_s, status" in problems[0]
    assert machines[0].bench_rows is None and machines[0].conformance is not None


def test_csv_truncated_mid_row_is_rejected_with_its_line(real_tree):
    path = real_tree.bench_csv(A)
    header = real_tree.bench_header(A)
    text = path.read_text()
    cut = text.rstrip("\n").rfind("\n") + 40  # 40 characters into the last row
    path.write_text(text[:cut])
    last_line = text.rstrip("\n").count("\n") + 1
    with pytest.raises(CorruptResults, match=rf"line {last_line} has \d+ cells but the header has {len(header)}"):
        load_bench_csv(path)


@pytest.mark.parametrize(("content", "expected"), [
    ("", "empty file"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
])
def test_empty_or_binary_csv_is_rejected(tmp_path, content, expected):
    path = tmp_path / "bench.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(CorruptResults, match=expected):
        load_bench_csv(path)


def test_ok_row_without_a_median_is_rejected(real_tree):
    path = real_tree.bench_csv(A)

    def blank_first_ok(header, rows):
        next(r for r in rows if r["status"] == "ok")["median_s"] = ""
        return header, rows

    _rewrite_csv(path, blank_first_ok)
    with pytest.raises(CorruptResults, match="status ok but median_s is ''"):
        load_bench_csv(path)


def test_bad_number_is_rejected(real_tree):
    path = real_tree.bench_csv(A)

    def garble(header, rows):
        rows[3]["vocab"] = "lots"
        return header, rows

    _rewrite_csv(path, garble)
    with pytest.raises(CorruptResults, match="line 5: bad number"):  # the header is line 1
        load_bench_csv(path)


def test_duplicate_identity_keeps_the_measured_row(real_results, tmp_path):
    header = real_results.bench_header(A)
    measured = next(r for r in real_results.bench_rows(A) if r["status"] == "ok")
    skip = dict(measured, status="skipped", median_s="", skip_reason="needs KERAS_BACKEND")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows([measured, skip])  # the skip comes later but must not win
    (tmp_path / "bench.csv").write_text(out.getvalue())
    loaded = load_bench_csv(tmp_path / "bench.csv")
    assert len(loaded) == 1 and loaded[0]["status"] == "ok"
    assert loaded[0]["median_s"] == float(measured["median_s"])


def test_missing_bench_meta_is_reported_but_rows_are_kept(real_tree):
    real_tree.bench_meta_path(A).unlink()
    machines, problems = load_root(real_tree.root)
    assert len(problems) == 1 and "bench_meta.json: missing beside bench.csv" in problems[0]
    assert str(real_tree.bench_meta_path(A)) in problems[0]
    assert len(machines[0].bench_rows) == len(real_tree.bench_rows(A))


def test_truncated_png_is_dropped_by_name(real_tree):
    png, *others = real_tree.plots(B)
    png.write_bytes(png.read_bytes()[:300])
    notes = real_tree.bench_dir(B) / "plots" / "notes.png"
    notes.write_text("not an image")
    machines, problems = load_root(real_tree.root)
    assert sorted(problems) == sorted([
        f"{png}: truncated PNG (no end chunk); re-run nox -s bench or delete the file",
        f"{notes}: not a PNG image; re-run nox -s bench or delete the file",
    ])
    assert machines[1].plots == others and machines[0].plots == real_tree.plots(A)


def test_empty_machine_folder_is_a_problem_but_output_folders_are_not(real_tree):
    (real_tree.root / "interrupted-box" / "parts").mkdir(parents=True)
    for name in ("artifacts", "screenshots", ".hidden"):
        (real_tree.root / name).mkdir()
    machines, problems = load_root(real_tree.root)
    assert [m.machine_id for m in machines] == list(MACHINES)
    assert len(problems) == 1 and "interrupted-box: holds no conformance.json" in problems[0]


def test_conformance_only_machine(real_tree):
    import shutil

    shutil.rmtree(real_tree.bench_dir(A))
    problems: list[str] = []
    machine = load_machine(real_tree.machine(A), problems)
    assert problems == [] and machine.has_results and machine.bench_rows is None
    assert machine.conformance == real_tree.conformance(A)


def test_bench_only_machine_reads_its_profile_folder(real_tree):
    for name in ("conformance.json", "conformance.md"):
        (real_tree.machine(B) / name).unlink()
    problems: list[str] = []
    machine = load_machine(real_tree.machine(B), problems)
    assert problems == [] and machine.conformance is None
    assert machine.bench_subdir == f"{BENCH_SUBDIR}/" and machine.declared_machine_id() == B
    assert len(machine.bench_rows) == len(real_tree.bench_rows(B))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(min_value=0.0, max_value=1.0))
def test_any_truncation_loads_clean_rows_or_raises_corrupt(real_results, tmp_path, fraction):
    """Cut anywhere, a file either yields rows that all existed, or a CorruptResults: nothing else."""
    original = {bench_key(r) for r in load_bench_csv(real_results.bench_csv(A))}
    for source in (real_results.bench_csv(A), real_results.conformance_path(A)):
        data = source.read_bytes()
        cut = tmp_path / f"cut-{source.name}"
        cut.write_bytes(data[: int(len(data) * fraction)])
        try:
            loaded = load_bench_csv(cut) if source.suffix == ".csv" else load_conformance(cut)
        except CorruptResults as exc:
            assert str(cut) in str(exc) and "\n" not in str(exc)
            continue
        if source.suffix == ".csv":
            assert {bench_key(r) for r in loaded} <= original
        else:
            assert fraction > 0.99  # only the whole document (give or take whitespace) parses


def test_without_a_full_run_the_most_thorough_profile_is_reported(tmp_path):
    from harness.report.load import bench_folder

    machine = tmp_path / "m"
    for name in ("profile-smoke", "profile-tiny", "profile-quick", "profile-newfangled"):
        (machine / name).mkdir(parents=True)
        (machine / name / "bench.csv").write_text("x\n")
    assert bench_folder(machine).name == "profile-quick"
    (machine / "profile-quick" / "bench.csv").unlink()
    assert bench_folder(machine).name == "profile-tiny"  # a timed profile before the untimed smoke
    (machine / "bench.csv").write_text("x\n")
    assert bench_folder(machine) == machine  # the full profile wins over every other
