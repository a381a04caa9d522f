"""Every document is a view in harness/views, written through one table writer that escapes
what it shows; the committed conformance.md files are what their views make of conformance.json."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.conformance import current
from harness.results import read_json
from harness.views import conformance as conformance_view
from harness.views import tables

ROOT = Path(__file__).resolve().parents[2]
VIEWS = ROOT / "harness" / "views"
# Markup of a table or of a README section's markers, written by hand.
HAND_MADE = re.compile(r"\|---|<table|<td|<tr>|f\"<!--")
# The bytes formula is documented beside the code that computes it, as a constant BENCH.md quotes.
DOCUMENTED_FORMULA = {"harness/bench/metrics.py"}


def test_no_module_outside_the_views_writes_table_markup_or_a_readme_section():
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in sorted((ROOT / "harness").rglob("*.py"))
                 + sorted((ROOT / "backends").rglob("*.py")) if VIEWS not in path.parents
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if HAND_MADE.search(line) and str(path.relative_to(ROOT)) not in DOCUMENTED_FORMULA]
    assert offenders == []


def test_the_view_modules_themselves_leave_table_markup_to_the_table_writer():
    # The HTML report's status grid is an interactive widget (rows that filter, cells that open
    # their detail, vertical headings); every other table goes through views/tables.py.
    allowed = {"readme.py": {"replace_section"},
               "report_html.py": {"_grid", "_grid_row"}}
    offenders = []
    for path in sorted(VIEWS.glob("*.py")):
        if path.name == "tables.py":
            continue
        function = None
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if (m := re.match(r"def (\w+)", line)):
                function = m.group(1)
            if HAND_MADE.search(line) and function not in allowed.get(path.name, set()):
                offenders.append(f"{path.name}:{n} ({function})")
    assert offenders == []


def test_the_table_writer_shows_third_party_text_as_text():
    frame = tables.frame([["a|b", "<script>alert(1)</script>", None, 3]], ["id", "detail", "gone", "n"])
    md = tables.markdown(frame)
    assert md.splitlines() == ["| id | detail | gone | n |", "|---|---|---|---|",
                               "| a\\|b | &lt;script&gt;alert(1)&lt;/script&gt; | None | 3 |"]
    html = tables.html(frame)
    assert "<script>" not in html and "&lt;script&gt;" in html and "<td>a|b</td>" in html


def test_the_table_writer_takes_a_pivot_with_its_index():
    pd = pytest.importorskip("pandas")
    cells = pd.DataFrame({"check": ["x", "x", "y"], "adapter": ["a", "b", "a"], "status": ["pass", "xfail", "pass"]})
    grid = cells.pivot(index="check", columns="adapter", values="status").fillna("–")
    assert tables.markdown(grid, index="check", padded=True).splitlines() == [
        "| check | a    | b     |", "|-------|------|-------|", "| x     | pass | xfail |", "| y     | pass | –     |"]


def test_the_status_matrix_is_a_pivot_of_the_cells_in_check_order():
    doc = {"adapters": [
        {"id": "a", "checks": [{"check": "index_dtypes", "status": "passed"}, {"check": "forward[float32]",
                                                                             "status": "failed"}]},
        {"id": "b", "checks": [{"check": "forward[float32]", "status": "xfailed"}]}]}
    matrix = conformance_view.status_matrix(doc)
    assert list(matrix.columns) == ["a", "b"]
    assert list(matrix.index) == ["forward[float32]", "index_dtypes"]  # harness.checks.CHECKS order
    assert matrix.loc["forward[float32]"].tolist() == ["**FAIL**", "xfail"]
    assert matrix.loc["index_dtypes"].tolist() == ["pass", conformance_view.NOT_RUN]


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in (ROOT / "results").glob("*/conformance.json")))
def test_each_committed_conformance_md_is_its_view_of_conformance_json(folder):
    results = ROOT / "results" / folder
    doc = current(read_json(results / "conformance.json"))
    assert conformance_view.conformance_md(doc) == (results / "conformance.md").read_text(encoding="utf-8")


def test_html_row_headings_and_styled_cells():
    frame = tables.frame([["ok", "<b>"]], ["v1", "v2"])
    frame.index = ["row<1>"]
    page = tables.html(frame, index="adapter", cell=lambda row, column, value: (f' class="{column}"', value.upper()))
    assert page == ('<table><thead><tr><th>adapter</th><th>v1</th><th>v2</th></tr></thead><tbody>'
                    '<tr><th>row&lt;1&gt;</th><td class="v1">OK</td><td class="v2"><B></td></tr></tbody></table>')
