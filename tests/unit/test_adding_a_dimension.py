"""Adding a benchmark dimension touches the sweep and two more files, shown by doing it.

A copy of the project gets a new dimension, the order of the ids in a call ("drawn" as the
generator made them, or "sorted": a sorted batch reads the table front to back). The change is
the one a contributor would make: in the sweep (a ``Block`` and ``Case`` field, its place in the
case key, the profile that sweeps it), in the suite (sorting the ids) and in the schema (the
bench.csv column, part of the row key). Nothing else changes: the tiny profile then measures
both orders, the rows carry them, and BENCH.md gives each order tables of its own."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# file -> (anchor, replacement) pairs; every anchor must occur exactly once.
CHANGE = {
    "harness/bench/sweep.py": [
        ("    poolings: tuple[int, ...] = ()\n",
         "    poolings: tuple[int, ...] = ()\n    id_orders: tuple[str, ...] = (\"drawn\",)\n"),
        ("    pooling: int = 0  # ids per bag; 0: a plain lookup\n",
         "    pooling: int = 0  # ids per bag; 0: a plain lookup\n    id_order: str = \"drawn\"\n"),
        ("f\"{self.distribution}\" + (f\"-L{self.pooling}\" if self.pooling else \"\"))",
         "f\"{self.distribution}\" + (f\"-L{self.pooling}\" if self.pooling else \"\")\n"
         "                + (f\"-{self.id_order}\" if self.id_order != \"drawn\" else \"\"))"),
        ("pooling=int(d.get(\"pooling\") or 0))",
         "pooling=int(d.get(\"pooling\") or 0), id_order=d.get(\"id_order\") or \"drawn\")"),
        ("        for dtype, dim, vocab, pass_, dist, n, pooling in product(",
         "        for dtype, dim, vocab, pass_, dist, n, pooling, order in product("),
        ("                block.n_ids or (profile.n_ids,), block.poolings or (0,)):\n"
         "            case = Case(pass_, dtype, vocab, dim, n, dist, pooling)",
         "                block.n_ids or (profile.n_ids,), block.poolings or (0,), block.id_orders):\n"
         "            case = Case(pass_, dtype, vocab, dim, n, dist, pooling, order)"),
        ("        Block(vocabs=(4, 256, 4096, 32768, 262144), dims=(16,)),",
         "        Block(vocabs=(4, 256, 4096, 32768, 262144), dims=(16,), id_orders=(\"drawn\", \"sorted\")),"),
    ],
    "harness/bench/suite.py": [
        ("        batches = [b.astype(index_dtype) for b in batches]\n",
         "        batches = [b.astype(index_dtype) for b in batches]\n"
         "        if case.id_order == \"sorted\":\n"
         "            for b in batches:\n"
         "                b.sort()\n"),
    ],
    "harness/schema.py": [
        ("\"status\": str, \"skip_reason\": str, \"part\": str, \"run_id\": str,\n",
         "\"status\": str, \"skip_reason\": str, \"part\": str, \"run_id\": str, \"id_order\": str,\n"),
        ("BENCH_LATER_COLUMNS = (\"run_id\", \"pct_peak_bw\", \"output\", \"pooling\")",
         "BENCH_LATER_COLUMNS = (\"run_id\", \"pct_peak_bw\", \"output\", \"pooling\", \"id_order\")"),
        ("\"pooling\", \"distribution\")", "\"pooling\", \"distribution\", \"id_order\")"),
    ],
}


def _copy_project(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in ("harness", "backends", "tests"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def _apply(project: Path) -> None:
    for name, edits in CHANGE.items():
        path = project / name
        text = path.read_text()
        for anchor, replacement in edits:
            assert text.count(anchor) == 1, f"{name}: the change no longer applies at {anchor!r}"
            text = text.replace(anchor, replacement)
        path.write_text(text)


def test_a_new_dimension_is_the_sweep_and_two_more_files(tmp_path):
    assert set(CHANGE) - {"harness/bench/sweep.py"} == {"harness/bench/suite.py", "harness/schema.py"}
    project = tmp_path / "project"
    _copy_project(project)
    _apply(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDDING_HARNESS_") and k != "CI"}
    env.update(PYTHONPATH=str(project), EMBEDDING_HARNESS_RESULTS=str(tmp_path / "results"),
               EMBEDDING_HARNESS_MACHINE_ID="dimension-box", EMBEDDING_HARNESS_ADAPTERS="numpy-gather")
    got = subprocess.run([sys.executable, "-m", "harness.bench", "all", "--profile", "tiny"], cwd=project,
                         env=env, capture_output=True, text=True, timeout=600)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    out = tmp_path / "results" / "dimension-box" / "profile-tiny"
    rows = list(csv.DictReader(io.StringIO((out / "bench.csv").read_text())))
    looked_up = [r for r in rows if r["adapter"] == "numpy-gather" and r["vocab"] == "256" and r["dim"] == "16"
                 and r["pass"] == "forward" and r["distribution"] == "uniform"]
    assert sorted(r["id_order"] for r in looked_up) == ["drawn", "sorted"]  # one row each, none overwritten
    assert all(r["status"] == "ok" and float(r["median_s"]) > 0 for r in looked_up)
    elsewhere = {r["id_order"] for r in rows if r["distribution"] == "uniform-stream"}
    assert elsewhere == {"drawn"}  # blocks that do not sweep it keep the default
    bench_md = (out / "BENCH.md").read_text()
    assert "id_order sorted" in bench_md and "id_order drawn" in bench_md  # each order has tables of its own
