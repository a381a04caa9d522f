"""Merging and shaping: the conformance matrix, machine metadata, crossover and pivot tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report.benchtables import format_seconds, pivots
from harness.report.load import MachineResults, load_root
from harness.report.merge import conformance_matrix, crossover_table, machine_metadata
from harness.report.sample import write_machine


def _conformance(adapters: list[dict], mid: str = "m") -> dict:
    return {"schema": "embedding-harness/conformance/1", "machine": {"machine_id": mid}, "adapters": adapters}


def _adapter(adapter_id: str, statuses: dict[str, str], device: str = "cpu", skip: str | None = None) -> dict:
    return {"id": adapter_id, "device": device, "skip_reason": skip,
            "counts": {"passed": 999},  # stale counts must not leak into the matrix
            "checks": [{"check": c, "status": s, "detail": f"why {c}"} for c, s in statuses.items()]}


def test_matrix_merges_machines_and_keeps_gaps_visible():
    a = MachineResults("a", Path("a"), conformance=_conformance([
        _adapter("numpy-gather", {"fwd": "passed", "grad": "failed"}),
        _adapter("jax-gather", {}, skip="jax missing")]))
    b = MachineResults("b", Path("b"), conformance=_conformance([
        _adapter("numpy-gather", {"fwd": "passed", "grad": "passed", "extra": "xfailed"}),
        _adapter("torch-gather-cuda", {"fwd": "passed"}, device="cuda")]))
    m = conformance_matrix([a, b])
    assert m.machines == ["a", "b"]
    assert m.adapters == [("numpy-gather", "cpu"), ("jax-gather", "cpu"), ("torch-gather-cuda", "cuda")]
    assert m.checks[("numpy-gather", "cpu")] == ["fwd", "grad", "extra"]
    assert m.row_statuses(("numpy-gather", "cpu"), "grad") == ["failed", "passed"]
    assert m.row_statuses(("numpy-gather", "cpu"), "extra") == [None, "xfailed"]
    assert m.all_passed(("numpy-gather", "cpu"), "fwd") and not m.all_passed(("numpy-gather", "cpu"), "grad")
    assert m.runs[(("numpy-gather", "cpu"), "a")].counts == {"passed": 1, "failed": 1, "xfailed": 0, "skipped": 0}
    assert m.runs[(("jax-gather", "cpu"), "a")].skip_reason == "jax missing"
    assert (("jax-gather", "cpu"), "b") not in m.runs  # not run there: shown as —, not as a skip
    assert [(mid, key[0], check) for mid, key, check, _ in m.failures()] == [("a", "numpy-gather", "grad")]
    assert m.total("passed") == 4


def _metadata(machine: MachineResults) -> dict[str, str]:
    return dict(machine_metadata(machine))


def test_metadata_from_both_runs_shows_disagreements(tmp_path):
    folder = write_machine(tmp_path, "box")
    meta = json.loads((folder / "bench_meta.json").read_text())
    meta["machine"]["git"]["commit"] = meta["git"]["commit"] = "bench0000"
    (folder / "bench_meta.json").write_text(json.dumps(meta))
    machine = load_root(tmp_path)[0][0]
    rows = _metadata(machine)
    assert rows["git.commit"] == "4f2c9e1d (conformance) / bench0000 (bench)"
    assert rows["cpu_model"] == "AMD EPYC 7763 64-Core Processor"
    assert rows["memory_bytes"] == "64.0 GiB" and rows["bench.onehot_mem_budget"] == "2.0 GiB"
    assert rows["versions.torch"] == "2.13.0" and rows["bench.profile"] == "quick"
    # Bulky bookkeeping stays out of the table.
    assert not any(k.startswith(("bench.adapters", "bench.columns", "bench.crossover", "bench.plots")) for k in rows)
    assert list(rows)[:3] == ["machine_id", "cpu_model", "cpu_count"]


def test_metadata_from_a_flat_bench_meta(tmp_path):
    """bench_meta.json with the machine fields at the top level (no "machine" object)."""
    folder = write_machine(tmp_path, "flat")
    (folder / "conformance.json").unlink()
    meta = json.loads((folder / "bench_meta.json").read_text())
    flat = {**meta.pop("machine"), **meta}
    (folder / "bench_meta.json").write_text(json.dumps(flat))
    machine = load_root(tmp_path)[0][0]
    rows = _metadata(machine)
    assert rows["machine_id"] == "flat" and rows["cpu_count"] == "16" and rows["thread_env.OMP_NUM_THREADS"] == "16"
    assert machine.declared_machine_id() == "flat"


def test_crossover_table_keeps_the_headline_slice_and_moves_constants_to_the_caption():
    entries = [
        {"onehot_adapter": "torch-onehot", "device": "cpu", "dtype": "float32", "pass": "forward", "dim": 256,
         "distribution": "uniform", "n_ids": 64, "onehot_wins_at": [4], "verdict": "4"},
        {"onehot_adapter": "torch-onehot", "device": "cpu", "dtype": "float32", "pass": "forward", "dim": 64,
         "distribution": "uniform", "n_ids": 64, "onehot_wins_at": [4, 64], "verdict": "4"},
        {"onehot_adapter": "torch-onehot", "device": "cpu", "dtype": "float16", "pass": "forward", "dim": 64,
         "distribution": "uniform", "n_ids": 64, "onehot_wins_at": [], "verdict": "never"},
    ]
    caption, headers, rows = crossover_table(entries)
    assert headers == ["dim", "verdict"]  # lists dropped; constant columns in the caption
    assert rows == [["64", "4"], ["256", "4"]]  # numeric order, float16 left out
    assert caption == ("in every row: onehot_adapter torch-onehot, device cpu, dtype float32, pass forward, "
                       "distribution uniform, n_ids 64")


@pytest.mark.parametrize(("value", "expected"), [
    ({"cpu": {"dim": 64, "vocab": 1500}}, ("", ["", "dim", "vocab"], [["cpu", "64", "1500"]])),
    ({"threshold": 1500}, ("", ["", "value"], [["threshold", "1500"]])),
    ("onehot never wins", None),
])
def test_crossover_table_other_shapes(value, expected):
    assert crossover_table(value) == expected


def _row(adapter: str, vocab: int, median: float | None, **extra) -> dict:
    row = {"adapter": adapter, "device": "cpu", "dtype": "float32", "index_dtype": "int64", "pass": "forward",
           "vocab": vocab, "dim": 64, "n_ids": 4096, "distribution": "uniform", "median_s": median,
           "gbps": 1.0 if median else None, "status": "ok" if median else "skipped", "skip_reason": None}
    row.update(extra)
    return row


def test_pivot_slices_labels_and_best_cells():
    rows = [
        _row("a-gather", 100, 2e-6), _row("a-gather", 1000, 3e-6),
        _row("b-onehot", 100, 1e-6), _row("b-onehot", 1000, 9e-6),
        _row("b-onehot", 100, 5e-7, dtype="bfloat16"),           # not the headline dtype
        _row("a-gather", 100, 1e-9, n_ids=64),                    # a less common batch size
        _row("c-gather", 100, None), _row("c-gather", 1000, None),  # skipped everywhere: dropped
        _row("a-gather", 100, 4e-6, **{"pass": "forward_backward"}),
    ]
    tables = pivots(rows)
    assert [(t.device, t.pass_, t.dim, t.n_ids) for t in tables] == [("cpu", "forward", 64, 4096),
                                                                    ("cpu", "forward_backward", 64, 4096)]
    fwd = tables[0]
    assert fwd.vocabs == [100, 1000] and fwd.rows == ["a-gather", "b-onehot"]
    assert fwd.best(100) == "b-onehot" and fwd.best(1000) == "a-gather"
    assert fwd.cells[("b-onehot", 100)].median_s == 1e-6


def test_pivot_labels_index_dtypes_when_mixed():
    rows = [_row("a-gather", 100, 2e-6, index_dtype="int32"), _row("b-onehot", 100, 1e-6)]
    assert pivots(rows)[0].rows == ["a-gather [int32]", "b-onehot [int64]"]


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"), (2.5, "2.5 s"), (0.0123, "12.3 ms"), (4.56e-5, "45.6 µs"), (7.8e-8, "78 ns")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_declared_and_observed_index_dtypes_in_another_order_agree():
    from harness.report.merge import _mismatches

    same = {"declared": {"index_dtypes": ["int16", "int32", "int64"], "negative_index": "raise"},
            "observed": {"index_dtypes": ["int64", "int32", "int16"], "negative_index": "raise"}}
    assert _mismatches(same) == []
    differ = {"declared": {"index_dtypes": ["int32", "int64"], "negative_index": "raise"},
              "observed": {"index_dtypes": ["int32"], "negative_index": "wrap"}}
    assert _mismatches(differ) == [("index_dtypes", ["int32", "int64"], ["int32"]),
                                   ("negative_index", "raise", "wrap")]


def test_launch_floor_rows_get_no_pivot_of_their_own():
    floor = _row("a-gather", 2, 5e-6, n_ids=1)
    floor["dim"] = 1
    rows = [_row("a-gather", 100, 2e-6), _row("a-gather", 1000, 3e-6), floor]
    assert [(t.dim, t.n_ids) for t in pivots(rows)] == [(64, 4096)]
    assert all(2 not in t.vocabs for t in pivots(rows))
