"""The adapters x vocabulary tables (BENCH.md, README, report) cut rows by every key column, so two
rows that differ in any dimension never share a cell."""

from __future__ import annotations

from harness.bench import slices
from harness.views import tables
from harness.views.bench_pivots import pivots


def _row(adapter, vocab, index_dtype="int32", median=1e-3, **key):
    row = {"adapter": adapter, "device": "cpu", "dtype": "float32", "index_dtype": index_dtype, "pass": "forward",
           "vocab": vocab, "dim": 64, "n_ids": 1000, "pooling": None, "distribution": "uniform", "status": "ok",
           "median_s": median, "gbps": 1.0, "skip_reason": None}
    return {**row, **key}


def test_a_dimension_added_to_the_key_gets_tables_of_its_own(monkeypatch):
    monkeypatch.setattr(slices, "SLICE_COLUMNS", (*slices.SLICE_COLUMNS, "layout"))
    rows = [_row("a-gather", v, layout=layout, median=m) for v in (10, 100)
            for layout, m in (("contiguous", 1e-3), ("strided", 5e-3))]
    cut = slices.slices(rows)
    assert [p.key["layout"] for p in cut] == ["contiguous", "strided"]
    assert [p.cell("a-gather", 100)["median_s"] for p in cut] == [1e-3, 5e-3]  # nothing overwritten
    assert [p.extra_dimensions() for p in cut] == ["layout contiguous", "layout strided"]
    assert [t.title for t in pivots(rows)] == [
        "cpu · forward · dim 64 (float32, uniform, 1000 ids, layout contiguous)",
        "cpu · forward · dim 64 (float32, uniform, 1000 ids, layout strided)"]


def test_an_adapter_measured_with_two_index_dtypes_gets_a_row_each_others_keep_their_name():
    rows = [_row("a-gather", 10, "int32", 1e-3), _row("a-gather", 10, "int64", 2e-3), _row("b-onehot", 10, "int64"),
            _row("c-gather", 10, None, None, status="skipped")]
    (piece,) = slices.slices(rows)
    assert piece.labels == ["a-gather [int32]", "a-gather [int64]", "b-onehot", "c-gather"]
    assert piece.cell("a-gather [int64]", 10)["median_s"] == 2e-3


def test_the_headline_is_float32_uniform_and_the_batch_with_most_measured_rows():
    rows = [_row("a-gather", v, n_ids=n) for v in (10, 100) for n in (1000, 4000)]
    rows += [_row("a-gather", 10, dtype="float16"), _row("a-gather", 10, distribution="zipf")]
    rows[0]["status"] = "skipped"  # 1000 ids: one measured row fewer
    (head,) = slices.headline(slices.slices(rows))
    assert (head.key["dtype"], head.key["distribution"], head.key["n_ids"]) == ("float32", "uniform", 4000)


def test_a_slice_as_a_frame_and_the_frame_as_a_markdown_table():

    rows = [_row("a-gather", 10, median=1e-3), _row("a-gather", 100, median=2e-3), _row("b-onehot", 10, median=3e-3)]
    (piece,) = slices.slices(rows)
    frame = piece.frame(lambda r: r["median_s"] * 1e3, missing="-")
    assert list(frame.index) == ["a-gather", "b-onehot"] and list(frame.columns) == [10, 100]
    assert frame.loc["b-onehot", 100] == "-" and frame.loc["a-gather", 100] == 2.0  # b never ran at V=100
    assert tables.markdown(frame.T, index="V", column_name=lambda c: f"<{c}>").splitlines() == [
        "| V | &lt;a-gather&gt; | &lt;b-onehot&gt; |", "|---|---|---|", "| 10 | 1.0 | 3.0 |", "| 100 | 2.0 | - |"]
