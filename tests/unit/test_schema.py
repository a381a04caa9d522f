"""One schema (harness/schema.py): what the writers write is what every reader reads, with the
same types, whichever reader it is."""

from __future__ import annotations

import math

import pytest
from real_results import MACHINES

from harness import machine, schema
from harness.bench import rows as rows_mod
from harness.report.load import load_bench_csv
from harness.schema import bench_csv_text, read_bench_csv


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return type(a) is type(b) and a == b


def test_both_bench_csv_readers_read_the_writers_file_alike(real_results):
    """The bench's own reader (finalize, README) and the report's loader: same rows, same types."""
    path = real_results.bench_csv(MACHINES[0])
    own = {schema.bench_key(r): r for r in read_bench_csv(path.read_text())}
    loaded = {schema.bench_key(r): r for r in load_bench_csv(path)}
    assert own.keys() == loaded.keys() and len(own) > 10
    for key, row in own.items():
        theirs = loaded[key]
        differing = {c: (row[c], theirs.get(c)) for c in schema.BENCH_COLUMNS if not _same(row[c], theirs.get(c))}
        assert differing == {}, key
    typed = next(r for r in own.values() if r["status"] == "ok")
    for column, kind in schema.BENCH_COLUMN_TYPES.items():
        assert typed[column] is None or isinstance(typed[column], kind), (column, typed[column])
    assert isinstance(typed["rounds"], int) and isinstance(typed["vocab"], int) and isinstance(typed["gbps"], float)


def test_the_writers_columns_are_the_schemas():
    assert rows_mod.COLUMNS == schema.BENCH_COLUMNS
    assert bench_csv_text([]).strip().split(",") == list(schema.BENCH_COLUMNS)
    columns = set(schema.BENCH_COLUMNS)
    assert set(schema.BENCH_KEY) <= columns and set(schema.BENCH_REQUIRED) <= columns
    assert set(schema.BENCH_LATER_COLUMNS) <= columns


def test_machine_metadata_writes_exactly_the_schemas_fields():
    assert tuple(machine.metadata()) == schema.MACHINE_FIELDS


@pytest.mark.parametrize("text, problem", [
    ("adapter,status,median_s,vocab\na,ok,0.5,12\nb,ok,0.5\n", "line 3 has 3 cells but the header has 4"),
    ("adapter,status,median_s,vocab\na,ok,0.5,12.5\n", "line 2: bad number (vocab '12.5' is not an integer)"),
    ("adapter,status,median_s,vocab\na,fine,0.5,12\n", "line 2: status 'fine' is not one of ok, skipped, error"),
    ("adapter,status,median_s,vocab\na,ok,,12\n", "line 2: status ok but median_s is ''"),
])
def test_a_damaged_table_is_refused_naming_the_line(text, problem):
    with pytest.raises(ValueError) as err:
        schema.parse_bench_csv(text)
    assert str(err.value).startswith(problem)


def test_the_part_that_measured_wins_in_every_reader():
    from harness.bench import rows as rows_mod
    from harness.report.load import _dedupe
    from harness.schema import measured_wins

    items = [("a", 0, "first skip"), ("a", 1, "measured"), ("b", 0, "only skip"), ("a", 0, "later skip"),
             ("a", 1, "measured again")]
    kept = measured_wins(items, lambda i: i[0], lambda i: i[1])
    assert [i[2] for i in kept] == ["measured", "only skip", "measured again"]
    # the report's reader: per row identity, ok beats error beats skipped, the later among equals
    base = {"adapter": "x", "device": "cpu", "dtype": "float32", "index_dtype": "int32", "pass": "forward",
            "vocab": 8, "dim": 4, "n_ids": 16, "pooling": None, "distribution": "uniform"}
    rows = [{**base, "status": "ok", "median_s": 1.0}, {**base, "status": "skipped"},
            {**base, "status": "error"}, {**base, "status": "ok", "median_s": 2.0}]
    assert [(r["status"], r.get("median_s")) for r in _dedupe(rows)] == [("ok", 2.0)]
    # the bench's: an adapter's description from the part that loaded it, wherever it comes
    records = [{"part": "core", "adapters": {"k": {"skip_reason": "other backend"}}},
               {"part": "keras", "adapters": {"k": {"variant": "gather"}}},
               {"part": "late", "adapters": {"k": {"skip_reason": "other backend"}}}]
    assert rows_mod.adapters_meta(records) == {"k": {"variant": "gather", "part": "keras"}}


def test_rows_as_stored_carry_the_files_values_and_keep_the_samples():
    row = {c: None for c in schema.BENCH_COLUMNS} | {
        "adapter": "a", "status": "ok", "vocab": 512, "median_s": 6.014999996e-4, "gbps": 6.6049999,
        "samples": [6.0e-4, 6.1e-4]}
    (stored,) = schema.as_stored([row])
    assert stored["median_s"] == 6.015e-4 and stored["gbps"] == 6.605  # bench.csv's 6 significant digits
    assert stored["vocab"] == 512 and isinstance(stored["vocab"], int)
    assert stored["samples"] == [6.0e-4, 6.1e-4]  # not a column: kept for the intervals
    assert row["median_s"] == 6.014999996e-4  # the caller's rows are left as they were


def test_finalize_writes_the_view_of_the_files_it_wrote(real_results):
    """BENCH.md shows what bench.csv and bench_meta.json hold: rendered again from them, it is
    the same to the byte (a figure rounded from unstored digits would differ in its last digit)."""
    from harness.bench.finalize import bench_md_of

    for mid in MACHINES:
        folder = real_results.bench_dir(mid)
        assert bench_md_of(folder) == (folder / "BENCH.md").read_text(encoding="utf-8")


def test_a_folder_without_a_finalized_table_is_named(tmp_path):
    from harness.bench.finalize import bench_md_of
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match=r"bench.csv: missing; run 'python -m harness.bench finalize --out "):
        bench_md_of(tmp_path)
    (tmp_path / "bench.csv").write_text("adapter\n", encoding="utf-8")
    with pytest.raises(HarnessError, match=r"bench_meta.json: missing; re-run the session that writes it"):
        bench_md_of(tmp_path)
