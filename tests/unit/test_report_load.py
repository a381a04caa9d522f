"""Reading results folders back: good files load typed; bad ones become one named line each."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import CorruptResults
from harness.report.load import (
    bench_key,
    load_bench_csv,
    load_conformance,
    load_machine,
    load_root,
)
from harness.report.sample import bench_rows, write_machine, write_sample_tree


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    write_sample_tree(tmp_path, ("m-one", "m-two"))
    return tmp_path


def _single_lines(problems: list[str]) -> None:
    assert problems and all("\n" not in p for p in problems)


def test_sample_tree_loads_cleanly_and_typed(tree):
    machines, problems = load_root(tree)
    assert problems == []
    assert [m.machine_id for m in machines] == ["m-one", "m-two"]
    one = machines[0]
    assert one.declared_machine_id() == "m-one"
    assert len(one.bench_rows) == len(bench_rows())
    ok = next(r for r in one.bench_rows if r["status"] == "ok")
    skipped = next(r for r in one.bench_rows if r["status"] == "skipped")
    assert isinstance(ok["vocab"], int) and isinstance(ok["median_s"], float) and ok["median_s"] > 0
    assert skipped["median_s"] is None and skipped["gbps"] is None
    assert [p.name for p in one.plots] == ["lookups_cpu_forward_float32.png"]
    assert one.has_bench_md and one.bench_meta["profile"] == "quick"


def test_truncated_conformance_json_is_named_and_the_rest_still_loads(tree):
    path = tree / "m-two" / "conformance.json"
    path.write_text(path.read_text()[:500])
    machines, problems = load_root(tree)
    _single_lines(problems)
    assert len(problems) == 1 and str(path) in problems[0] and "not valid JSON" in problems[0]
    two = machines[1]
    assert two.conformance is None and two.bench_rows  # bench of the same machine survives
    assert machines[0].conformance is not None


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d.update(schema="embedding-harness/conformance/2"), "unsupported schema"),
    (lambda d: d.update(adapters={"not": "a list"}), "'adapters'"),
    (lambda d: d["adapters"][0].pop("id"), "no string 'id'"),
    (lambda d: d["adapters"][1]["checks"][0].update(status="exploded"), "status 'exploded'"),
    (lambda d: d["adapters"][0].update(declared=["raise"]), "'declared' is not an object"),
])
def test_conformance_schema_violations_are_rejected(tree, mutate, expected):
    path = tree / "m-one" / "conformance.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(CorruptResults, match=expected) as info:
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


def test_csv_with_missing_columns_is_rejected_by_name(tree):
    path = tree / "m-one" / "bench.csv"
    _rewrite_csv(path, lambda header, rows: ([h for h in header if h not in ("median_s", "status")], rows))
    machines, problems = load_root(tree)
    assert len(problems) == 1 and str(path) in problems[0]
    assert "missing column(s) median_s, status" in problems[0]
    assert machines[0].bench_rows is None and machines[0].conformance is not None


def test_csv_truncated_mid_row_is_rejected_with_its_line(tree):
    path = tree / "m-one" / "bench.csv"
    text = path.read_text()
    cut = text.rstrip("\n").rfind("\n") + 40  # 40 characters into the last row
    path.write_text(text[:cut])
    with pytest.raises(CorruptResults, match=r"line \d+ has \d+ cells but the header has 27"):
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


def test_ok_row_without_a_median_is_rejected(tree):
    path = tree / "m-one" / "bench.csv"

    def blank_first_ok(header, rows):
        next(r for r in rows if r["status"] == "ok")["median_s"] = ""
        return header, rows

    _rewrite_csv(path, blank_first_ok)
    with pytest.raises(CorruptResults, match="status ok but median_s is ''"):
        load_bench_csv(path)


def test_bad_number_is_rejected(tree):
    path = tree / "m-one" / "bench.csv"

    def garble(header, rows):
        rows[3]["vocab"] = "lots"
        return header, rows

    _rewrite_csv(path, garble)
    with pytest.raises(CorruptResults, match="bad number"):
        load_bench_csv(path)


def test_duplicate_identity_keeps_the_measured_row(tmp_path):
    rows = [r for r in bench_rows() if r["status"] == "ok"][:1]
    skip = dict(rows[0], status="skipped", median_s="", skip_reason="needs KERAS_BACKEND", part="core")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows([rows[0], skip])  # the skip comes later but must not win
    (tmp_path / "bench.csv").write_text(out.getvalue())
    loaded = load_bench_csv(tmp_path / "bench.csv")
    assert len(loaded) == 1 and loaded[0]["status"] == "ok"


def test_missing_bench_meta_is_reported_but_rows_are_kept(tree):
    (tree / "m-one" / "bench_meta.json").unlink()
    machines, problems = load_root(tree)
    assert len(problems) == 1 and "bench_meta.json: missing beside bench.csv" in problems[0]
    assert machines[0].bench_rows


def test_truncated_png_is_dropped_by_name(tree):
    png = tree / "m-two" / "plots" / "lookups_cpu_forward_float32.png"
    png.write_bytes(png.read_bytes()[:300])
    (tree / "m-two" / "plots" / "notes.png").write_text("not an image")
    machines, problems = load_root(tree)
    assert sorted(problems) == sorted([
        f"{png}: truncated PNG (no end chunk); re-run nox -s bench or delete the file",
        f"{tree / 'm-two' / 'plots' / 'notes.png'}: not a PNG image; re-run nox -s bench or delete the file",
    ])
    assert machines[1].plots == [] and len(machines[0].plots) == 1


def test_empty_machine_folder_is_a_problem_but_output_folders_are_not(tree):
    (tree / "interrupted-box" / "parts").mkdir(parents=True)
    for name in ("artifacts", "screenshots", ".hidden"):
        (tree / name).mkdir()
    machines, problems = load_root(tree)
    assert [m.machine_id for m in machines] == ["m-one", "m-two"]
    assert len(problems) == 1 and "interrupted-box: holds no conformance.json" in problems[0]


def test_conformance_only_machine(tmp_path):
    folder = write_machine(tmp_path, "conf-only")
    for name in ("bench.csv", "bench_meta.json", "BENCH.md"):
        (folder / name).unlink()
    problems: list[str] = []
    machine = load_machine(folder, problems)
    assert problems == [] and machine.has_results and machine.bench_rows is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(min_value=0.0, max_value=1.0))
def test_any_truncation_loads_clean_rows_or_raises_corrupt(tmp_path, fraction):
    """Cut anywhere, a file either yields rows that all existed, or a CorruptResults: nothing else."""
    folder = tmp_path / "trunc"
    if not folder.exists():
        write_machine(tmp_path, "trunc", plots=False)
    original = {bench_key(r) for r in load_bench_csv(folder / "bench.csv")}
    for name in ("bench.csv", "conformance.json"):
        data = (folder / name).read_bytes()
        cut = tmp_path / f"cut-{name}"
        cut.write_bytes(data[: int(len(data) * fraction)])
        try:
            loaded = load_bench_csv(cut) if name == "bench.csv" else load_conformance(cut)
        except CorruptResults as exc:
            assert str(cut) in str(exc) and "\n" not in str(exc)
            continue
        if name == "bench.csv":
            assert {bench_key(r) for r in loaded} <= original
        else:
            assert fraction > 0.99  # only the whole document (give or take whitespace) parses
