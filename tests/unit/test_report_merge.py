"""Merging and shaping: the conformance matrix, machine metadata, crossover and pivot tables.

Edge cases use small hand-made documents; the rest reads the real results tree
(tests/real_results.py) and checks against what its files hold."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from real_results import MACHINES, PROFILE

from harness.bench.sweep import is_floor_row
from harness.report.load import MachineResults, bench_key, load_bench_csv, load_root
from harness.report.merge import (
    adapter_label,
    conformance_matrix,
    crossover_table,
    machine_metadata,
)
from harness.views.bench_pivots import pivots
from harness.views.formats import fmt_bytes, format_seconds

A, B = MACHINES


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
    assert m.runs[(("numpy-gather", "cpu"), "a")].counts == {"passed": 1, "failed": 1, "xfailed": 0,
                                                                  "not_applicable": 0, "skipped": 0}
    assert m.runs[(("jax-gather", "cpu"), "a")].skip_reason == "jax missing"
    assert (("jax-gather", "cpu"), "b") not in m.runs  # not run there: shown as —, not as a skip
    assert [(mid, key[0], check) for mid, key, check, _ in m.failures()] == [("a", "numpy-gather", "grad")]
    assert m.total("passed") == 4


def test_matrix_of_the_real_runs_keeps_every_cell_and_each_gap(real_results):
    machines, problems = load_root(real_results.root)
    assert problems == []
    m = conformance_matrix(machines)
    docs = {mid: real_results.conformance(mid) for mid in MACHINES}
    assert m.machines == list(MACHINES)
    first_seen = list(dict.fromkeys((a["id"], a["device"]) for mid in MACHINES for a in docs[mid]["adapters"]))
    assert m.adapters == first_seen
    cells = {mid: real_results.cells(mid) for mid in MACHINES}
    for key in m.adapters:
        for check in m.checks[key]:
            assert m.row_statuses(key, check) == [cells[mid][(key[0], check)]["status"]
                                                  if (key[0], check) in cells[mid] else None for mid in MACHINES]
    only_a = next(a for a in docs[A]["adapters"] if a["id"].startswith("broken-"))
    key = (only_a["id"], "cpu")
    assert (key, B) not in m.runs  # not run there: shown as —, not as a skip
    assert m.runs[(key, A)].counts == {s: sum(c["status"] == s for c in only_a["checks"])
                                       for s in ("passed", "failed", "xfailed", "not_applicable", "skipped")}
    [skipped] = [a for a in docs[B]["adapters"] if a["skip_reason"]]
    assert m.runs[((skipped["id"], "cpu"), B)].skip_reason == skipped["skip_reason"]
    failed = sorted((mid, a, c) for mid in MACHINES for (a, c), cell in cells[mid].items()
                    if cell["status"] == "failed")
    assert failed and sorted((mid, key[0], check) for mid, key, check, _ in m.failures()) == failed
    every = Counter(cell["status"] for mid in MACHINES for cell in cells[mid].values())
    assert {s: m.total(s) for s in every} == dict(every)
    mismatched = {(mid, adapter_label(k), cap) for (k, mid), run in m.runs.items() for cap, _, _ in run.mismatches}
    assert (A, "broken-clamps", "negative_index") in mismatched  # it clamps but declares wrap


def _metadata(machine: MachineResults) -> dict[str, str]:
    return dict(machine_metadata(machine))


def test_metadata_from_both_runs_shows_disagreements(real_tree):
    meta = real_tree.bench_meta(A)
    meta["machine"]["git"]["commit"] = meta["git"]["commit"] = "bench0000"
    real_tree.bench_meta_path(A).write_text(json.dumps(meta))
    machine = load_root(real_tree.root)[0][0]
    rows = _metadata(machine)
    recorded = real_tree.conformance(A)["machine"]
    assert rows["git.commit"] == f"{recorded['git']['commit']} (conformance) / bench0000 (bench)"
    assert rows["cpu_model"] == recorded["cpu_model"]
    assert rows["memory_bytes"] == f"{recorded['memory_bytes'] / 2**30:.1f} GiB"
    assert rows["bench.onehot_mem_budget"] == fmt_bytes(meta["onehot_mem_budget"])
    numpy_version = real_tree.conformance(A)["adapters"][0]["versions"]["numpy"]
    assert rows["versions.numpy"] == numpy_version and rows["bench.profile"] == PROFILE
    assert rows["bench.run_id"] == meta["run_id"]
    # Bulky bookkeeping stays out of the table.
    assert not any(k.startswith(("bench.adapters", "bench.columns", "bench.crossover", "bench.plots", "bench.parts"))
                   for k in rows)
    assert list(rows)[:3] == ["machine_id", "cpu_model", "cpu_count"]


def test_metadata_from_a_flat_bench_meta(real_tree):
    """bench_meta.json with the machine fields at the top level (no "machine" object)."""
    for name in ("conformance.json", "conformance.md"):
        (real_tree.machine(B) / name).unlink()
    meta = real_tree.bench_meta(B)
    recorded = meta["machine"]
    flat = {**meta.pop("machine"), **meta}
    real_tree.bench_meta_path(B).write_text(json.dumps(flat))
    machine = load_root(real_tree.root)[0][1]
    rows = _metadata(machine)
    assert rows["machine_id"] == B and rows["cpu_count"] == str(recorded["cpu_count"])
    assert rows["thread_env.OMP_NUM_THREADS"] == recorded["thread_env"]["OMP_NUM_THREADS"]
    assert machine.declared_machine_id() == B


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


def test_crossover_table_of_a_real_run(real_results):
    entries = real_results.bench_meta(A)["crossover"]
    caption, headers, rows = crossover_table(entries)
    headline = [e for e in entries if e["dtype"] == "float32" and e["distribution"] == "uniform"]
    assert headline and len(rows) == len(headline) and headers[-1] == "verdict"
    assert sorted(r[-1] for r in rows) == sorted(e["verdict"] for e in headline)
    assert not {"per_vocab", "onehot_wins_at", "ci_at_smallest"} & set(headers)  # lists and noise left out
    assert "onehot_adapter numpy-onehot" in caption


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


def test_pivots_of_a_real_run_show_every_headline_row_once(real_results):
    rows = load_bench_csv(real_results.bench_csv(A))
    tables = pivots(rows)
    shown = {}
    for t in tables:
        for (label, vocab), cell in t.cells.items():
            shown[(label, t.device, t.pass_, t.dtype, t.distribution, vocab, t.dim, t.n_ids)] = cell
    headline = [r for r in rows if not is_floor_row(r) and r["dtype"] == "float32" and r["distribution"] == "uniform"
                and r["adapter"] in {label for t in tables for label in t.rows}]
    assert headline and len(shown) == len(headline)
    for r in headline:
        cell = shown[(r["adapter"], r["device"], r["pass"], r["dtype"], r["distribution"], r["vocab"], r["dim"],
                      r["n_ids"])]
        assert (cell.status, cell.median_s, cell.gbps) == (r["status"], r["median_s"], r["gbps"]), bench_key(r)
        if r["status"] != "ok":
            assert cell.reason == r["skip_reason"] and cell.reason
    assert any(is_floor_row(r) for r in rows)  # the run timed its launch floor, which no pivot shows


def test_pivot_labels_index_dtypes_only_for_an_adapter_measured_with_several():
    rows = [_row("a-gather", 100, 2e-6, index_dtype="int32"), _row("b-onehot", 100, 1e-6)]
    assert pivots(rows)[0].rows == ["a-gather", "b-onehot"]  # one dtype each: their names suffice
    rows.append(_row("a-gather", 100, 3e-6, index_dtype="int64"))
    assert pivots(rows)[0].rows == ["a-gather [int32]", "a-gather [int64]", "b-onehot"]


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
