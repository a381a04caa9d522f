"""--compare with per-round samples: two machine folders written here (bench.csv, bench_meta.json and the
raw pytest-benchmark files beside them, in the layout finalize leaves), rounds chosen so that every
resampled median, and so the bootstrap interval of new/old, is known by hand."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness.report.__main__ import main

MID = "box"
RUN_OLD, RUN_NEW = "r-old", "r-new"
# 15 rounds spread evenly over [-1, 1] around the median: a resampled median lies within the spread.
OFFSETS = [k / 7 for k in range(-7, 8)]
COLUMNS = ("adapter", "framework", "variant", "device", "dtype", "index_dtype", "pass", "vocab", "dim", "n_ids",
           "distribution", "median_s", "iqr_s", "rounds", "gbps", "status", "skip_reason", "part", "run_id")


def rounds(centre: float, spread: float) -> list[float]:
    return [centre + spread * o for o in OFFSETS]


def _key(vocab: int, device: str = "cpu") -> dict:
    return {"adapter": "a-gather", "device": device, "dtype": "float32", "index_dtype": "int32", "pass": "forward",
            "vocab": vocab, "dim": 8, "n_ids": 16, "distribution": "uniform"}


def write_machine(folder: Path, run_id: str, rows: list[dict], meta_run_id: str | None = None) -> None:
    """rows: {vocab, median, iqr, samples (None: none recorded), part (default "core"), run_id (default
    run_id; "" for a table older than that column), in_data (samples only in stats["data"]), device}."""
    folder.mkdir(parents=True)
    with open(folder / "bench.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({**_key(r["vocab"], r.get("device", "cpu")), "framework": "a", "variant": "gather",
                             "median_s": repr(r["median"]), "iqr_s": repr(r["iqr"]),
                             "rounds": len(r.get("samples") or [0]), "gbps": "1.0", "status": "ok",
                             "skip_reason": "", "part": r.get("part", "core"), "run_id": r.get("run_id", run_id)})
    (folder / "bench_meta.json").write_text(json.dumps({"machine_id": MID, "profile": "tiny",
                                                        "run_id": meta_run_id or run_id}))
    files: dict[Path, list] = {}
    for r in rows:
        if r.get("samples") is None:
            continue
        part = r.get("part", "core").split("@")[0]
        path = folder / "raw" / (r.get("run_id") or meta_run_id or run_id) / f"bench-{part}.json"
        info = {**_key(r["vocab"], r.get("device", "cpu")), "median_s": r["median"], "rounds": len(r["samples"])}
        if not r.get("in_data"):
            info["samples"] = r["samples"]
        data = r.get("wall") or r["samples"]  # a GPU row keeps its wall times in pytest-benchmark's data
        files.setdefault(path, []).append({"name": f"test_embedding[{r['vocab']}]", "extra_info": info,
                                           "stats": {"data": data, "rounds": len(data)}})
    # A self-check entry, as every part file has one: same case, no device, never a row of the table.
    for path, entries in files.items():
        check = {k: v for k, v in _key(entries[0]["extra_info"]["vocab"]).items() if k != "device"}
        entries.append({"name": "test_method_self_check[repeat0]", "extra_info": {**check, "repeat": 0},
                        "stats": {"data": [9.0, 9.0, 9.0]}})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"benchmarks": entries, "embedding_harness": {"run_id": path.parent.name}}))


def compare(tmp_path: Path, old_rows: list[dict], new_rows: list[dict], capsys, **old_kw) -> tuple[int, dict, str]:
    """Run --compare; (exit code, {vocab: (basis, ratio cell, verdict)}, stderr)."""
    write_machine(tmp_path / "old" / MID, RUN_OLD, old_rows, **old_kw)
    write_machine(tmp_path / "results" / MID, RUN_NEW, new_rows)
    code = main(["--results", str(tmp_path / "results"), "--compare", str(tmp_path / "old" / MID)])
    captured = capsys.readouterr()
    assert (tmp_path / "results" / "COMPARE.md").read_text() == captured.out
    return code, rows(captured.out), captured.err


def rows(out: str) -> dict[int, tuple[str, str, str]]:
    """vocab -> (basis, ratio cell, verdict) of the printed benchmark table."""
    cells = ([c.strip() for c in line.strip().strip("|").split("|")] for line in out.splitlines()
             if line.startswith("| a-gather "))
    return {int(c[6]): (c[11], c[12], c[13]) for c in cells}


def interval(cell: str) -> tuple[float, float, float]:
    ratio, rest = cell.split(" [")
    low, high = rest.rstrip("]").split(", ")
    return float(ratio), float(low), float(high)


def test_slower_faster_unchanged_and_indistinguishable_by_interval(tmp_path, capsys):
    old = [dict(vocab=1, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01)),
           dict(vocab=2, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01)),
           dict(vocab=3, median=1.0, iqr=0.001, samples=rounds(1.0, 0.001)),
           dict(vocab=4, median=1.0, iqr=0.5, samples=[0.5, 1.0, 1.5])]
    new = [dict(vocab=1, median=1.5, iqr=0.01, samples=rounds(1.5, 0.01)),       # 1.5x slower
           dict(vocab=2, median=0.5, iqr=0.005, samples=rounds(0.5, 0.005)),     # twice as fast
           dict(vocab=3, median=1.02, iqr=0.001, samples=rounds(1.02, 0.001)),   # 2 % slower, tight rounds
           dict(vocab=4, median=1.0, iqr=0.5, samples=[1.5 + 1e-6, 1.0, 0.5 - 1e-6])]  # the same, reordered
    code, table, err = compare(tmp_path, old, new, capsys)
    assert code == 0 and err.strip() == f"wrote {tmp_path / 'results' / 'COMPARE.md'}"
    assert {v: (basis, verdict) for v, (basis, _, verdict) in table.items()} == {
        1: ("bootstrap 95 %", "slower"), 2: ("bootstrap 95 %", "faster"), 3: ("bootstrap 95 %", "unchanged"),
        4: ("bootstrap 95 %", "indistinguishable")}
    # Every resampled median lies within the rounds' spread, so the interval within the ratios of its ends:
    ratio, low, high = interval(table[1][1])
    assert ratio == 1.5 and 1.49 / 1.01 - 1e-3 <= low < 1.5 < high <= 1.51 / 0.99 + 1e-3
    ratio, low, high = interval(table[2][1])
    assert ratio == 0.5 and 0.495 / 1.01 - 1e-3 <= low < 0.5 < high <= 0.505 / 0.99 + 1e-3
    ratio, low, high = interval(table[3][1])  # above 1 (a real change), under the 5 % floor
    assert ratio == 1.02 and 1.019 / 1.001 - 1e-3 <= low and high <= 1.021 / 0.999 + 1e-3
    # Three rounds 0.5, 1, 1.5: a resampled median is 0.5 (or 1.5) with probability 7/27, so the ratio is
    # 1/3 (or 3) in 6.7 % of the draws, more than the 2.5 % each end cuts off: the interval is [1/3, 3].
    assert interval(table[4][1]) == (1.0, 0.333, 3.0)
    text = (tmp_path / "results" / "COMPARE.md").read_text()
    assert "1 slower, 1 faster, 0 status changed, 1 unchanged, 1 indistinguishable, 0 not measured" in text
    assert "Basis: 4 rows by the bootstrap 95 % interval, 0 by the IQR rule" in text


def test_same_medians_the_iqr_rule_calls_unchanged_can_be_indistinguishable_or_slower(tmp_path, capsys):
    # Row 1: 8 % apart but the rounds overlap (IQR rule: within 0.5 + 0.5, unchanged; interval straddles 1).
    # Row 2: 8 % apart with IQRs recorded wide (0.2 each) but rounds tight: the rounds say slower.
    old = [dict(vocab=1, median=1.0, iqr=0.5, samples=[0.5, 1.0, 1.5]),
           dict(vocab=2, median=1.0, iqr=0.2, samples=rounds(1.0, 0.01))]
    new = [dict(vocab=1, median=1.08, iqr=0.5, samples=[0.58, 1.08, 1.58]),
           dict(vocab=2, median=1.08, iqr=0.2, samples=rounds(1.08, 0.01))]
    _, table, _ = compare(tmp_path, old, new, capsys)
    assert table[1][2] == "indistinguishable" and table[2][2] == "slower"


def test_a_missing_raw_file_falls_back_to_the_iqr_rule_with_one_line(tmp_path, capsys):
    old = [dict(vocab=1, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01)),
           dict(vocab=2, median=1.0, iqr=0.5, samples=[0.5, 1.0, 1.5]),
           dict(vocab=3, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01), part="other")]
    new = [dict(vocab=1, median=1.5, iqr=0.01, samples=rounds(1.5, 0.01)),
           dict(vocab=2, median=1.0, iqr=0.5, samples=[1.5, 1.0, 0.5]),
           dict(vocab=3, median=1.5, iqr=0.01, samples=rounds(1.5, 0.01), part="other")]
    write_machine(tmp_path / "old" / MID, RUN_OLD, old)
    write_machine(tmp_path / "results" / MID, RUN_NEW, new)
    gone = tmp_path / "results" / MID / "raw" / RUN_NEW / "bench-core.json"
    gone.unlink()  # rows 1 and 2 are in it: still one line
    code = main(["--results", str(tmp_path / "results"), "--compare", str(tmp_path / "old" / MID)])
    out, err = capsys.readouterr()
    assert code == 3  # done, but a results file was missing
    assert [line for line in err.splitlines() if line.startswith("skipped:")] == [
        f"skipped: {gone}: missing; its rows are compared by the IQR rule, without an interval"]
    assert f"> - {gone}: missing;" in out
    table = rows(out)
    # The IQR rule: 0.5 apart > 0.01 + 0.01: slower; 0 apart: unchanged (the interval said indistinguishable).
    assert table[1] == ("IQR rule", "1.500", "slower") and table[2] == ("IQR rule", "1.000", "unchanged")
    assert table[3][0] == "bootstrap 95 %" and table[3][2] == "slower"  # its own file is there


@pytest.mark.parametrize("content", ["{not json", '{"benchmarks": 3}', '[1, 2]', '{"benchmarks": [{"x": 1}]}'])
def test_an_unreadable_raw_file_falls_back_with_one_line(tmp_path, capsys, content):
    old = [dict(vocab=v, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01)) for v in (1, 2)]
    new = [dict(vocab=v, median=1.5, iqr=0.01, samples=rounds(1.5, 0.01)) for v in (1, 2)]
    write_machine(tmp_path / "old" / MID, RUN_OLD, old)
    write_machine(tmp_path / "results" / MID, RUN_NEW, new)
    bad = tmp_path / "old" / MID / "raw" / RUN_OLD / "bench-core.json"
    bad.write_text(content)
    assert main(["--results", str(tmp_path / "results"), "--compare", str(tmp_path / "old" / MID)]) == 3
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if str(bad) in line]
    assert len(lines) == 1 and lines[0].startswith(f"skipped: {bad}: ") and "IQR rule" in lines[0]
    assert "Basis: 0 rows by the bootstrap 95 % interval, 2 by the IQR rule" in out
    assert out.count("| IQR rule ") == 2 and "| slower " in out


def test_one_round_or_samples_not_behind_the_row_fall_back_silently(tmp_path, capsys):
    old = [dict(vocab=1, median=1.0, iqr=0.0, samples=[1.0]),  # a smoke-like row: one round
           dict(vocab=2, median=1.0, iqr=0.01, samples=None),  # no entry in the raw file
           # a GPU row timed by device events: the data are wall times, their median is not the row's
           dict(vocab=3, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01), wall=rounds(1.3, 0.01), in_data=True,
                device="cuda"),
           dict(vocab=4, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01), in_data=True, device="cuda"),
           # the same with the harness's own samples in extra_info (runs since they were recorded): those count
           dict(vocab=5, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01), wall=rounds(1.3, 0.01), device="cuda"),
           dict(vocab=6, median=1.0, iqr=0.01, samples=[0.0, 1.0, 1.0])]  # a round of no time: not a timing
    new = [dict(vocab=v, median=1.5, iqr=0.01, samples=rounds(1.5, 0.01), device="cuda" if v in (3, 4, 5) else "cpu")
           for v in (1, 2, 3, 4, 5, 6)]
    code, table, err = compare(tmp_path, old, new, capsys)
    assert code == 0 and "skipped" not in err
    assert {v: table[v][0] for v in table} == {1: "IQR rule", 2: "IQR rule", 3: "IQR rule", 4: "bootstrap 95 %",
                                               5: "bootstrap 95 %", 6: "IQR rule"}
    assert table[1][1:] == ("1.500", "slower")  # 0.5 apart > 0.0 + 0.01 and > 5 %


def test_the_raw_file_is_found_as_finalize_leaves_it(tmp_path, capsys):
    # Old: a row carried over from an earlier run under a renamed part ("core@r-0", file raw/r-0/bench-core.json),
    # and a row of a table older than the run_id column (its run is bench_meta.json's).
    old = [dict(vocab=1, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01), part="core@r-0", run_id="r-0"),
           dict(vocab=2, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01), run_id="")]
    new = [dict(vocab=v, median=1.5, iqr=0.01, samples=rounds(1.5, 0.01)) for v in (1, 2)]
    code, table, _ = compare(tmp_path, old, new, capsys, meta_run_id="r-meta")
    assert (tmp_path / "old" / MID / "raw" / "r-0" / "bench-core.json").is_file()
    assert (tmp_path / "old" / MID / "raw" / "r-meta" / "bench-core.json").is_file()
    assert code == 0 and table[1][0] == table[2][0] == "bootstrap 95 %"
    assert table[1][2] == table[2][2] == "slower"
