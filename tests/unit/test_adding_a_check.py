"""Adding a check touches the check (its function and its entry in harness/checks.py's CHECKS)
and the declarations of the adapters that deviate from it: done here once, in process. The
writers record it, conformance.md and the HTML report show it as a row and a column of their own,
and a declaration may name it; none of them was told about it."""

from __future__ import annotations

import numpy as np

from examples.my_embedding import MyEmbedding
from harness import Declared, checks, conformance, machine
from harness.checks import ConformanceFailure
from harness.registry import load_adapter
from harness.report import build_report

NAME = "ids_order_followed"


def _ids_order_followed(adapter, ctx):
    """The new check: reversed ids give the same rows, reversed."""
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    ids = np.array([3, 1, 0, 2], dtype=np.int64)
    forward, backward = adapter.lookup(table, ids), adapter.lookup(table, ids[::-1].copy())
    if not np.array_equal(forward[::-1], backward):
        raise ConformanceFailure(f"W[ids[::-1]] is not W[ids][::-1]: {backward.tolist()} vs {forward[::-1].tolist()}")


class SortsItsIds(MyEmbedding):
    """A lookup that serves the rows in id order (the bug the new check exists for), and says so."""

    id = "sorts-ids"
    declared = Declared(weight_dtypes=("float32",), index_dtypes=("int64",), negative_index="wrap",
                        out_of_range="raise", deviations={NAME: "returns the rows in ascending id order"})

    def forward(self, weights, ids):
        return np.take(weights, np.sort(ids, axis=None).reshape(ids.shape), axis=0)


def test_a_new_check_is_recorded_and_shown_without_touching_the_writers_or_renderers(monkeypatch, tmp_path):
    new = checks.Check(NAME, "reversed ids give the same rows, reversed", _ids_order_followed)
    monkeypatch.setattr(checks, "CHECKS", [*checks.CHECKS, new])
    monkeypatch.setitem(checks.CHECKS_BY_NAME, NAME, new)

    adapters = [load_adapter("numpy-gather"), SortsItsIds()]  # the deviating one declares it: accepted
    cells, infos = {}, {}
    for adapter in adapters:
        (result,) = checks.check_adapter(adapter, [NAME])
        cells[adapter.id] = {NAME: conformance.cell(vars(result), profile="ci", run_id="r1")}
        infos[adapter.id] = {**adapter.describe(), "skip_reason": None, "load_error": None}
    assert {aid: c[NAME]["status"] for aid, c in cells.items()} == {"numpy-gather": "passed", "sorts-ids": "xfailed"}

    folder = tmp_path / "results" / "box"
    run = {"run_id": "r1", "profile": "ci", "machine": {**machine.metadata(), "machine_id": "box"},
           "adapters": infos, "cells": cells, "selection": None, "started": "", "wall_s": 1.0, "processes": 2,
           "complete": True, "problems": []}
    conformance.record_run(folder, run)
    markdown = (folder / "conformance.md").read_text()
    assert f"| {NAME} | pass | xfail |" in markdown.replace("\\_", "_")
    assert "returns the rows in ascending id order" in markdown

    assert build_report(tmp_path / "results").exit_code == 0
    page = (tmp_path / "results" / "report.html").read_text()
    assert f'<th class="vh" title="{NAME}"><span>{NAME}</span></th>' in page
    assert page.count(f'data-check="{NAME}"') == 2 and f'<code>{NAME}</code>' in page  # grid, differences
