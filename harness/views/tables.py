"""The one table writer of every view: a pandas DataFrame as a Markdown or an HTML table.

Cells are escaped on the way out unless the view says it wrote them itself (ids, reasons and
details come from third-party code), so a view builds its frame from the results (pivot,
groupby, a list of rows) and never writes table markup. Cells are shown as ``str`` shows
them; a view formats numbers (harness/views/formats.py) before they go in."""

from __future__ import annotations

from html import escape

from harness.bench.slices import require_pandas
from harness.views import mdtext


def frame(rows: list[list], columns: list):
    """A table given row by row, as a DataFrame that keeps every value as it is (no dtype
    inference: None stays None, 3 stays 3)."""
    pd = require_pandas("the reports")
    return pd.DataFrame(rows, columns=list(columns), dtype=object)


def spread(records: list[dict], index: list[str], across: str, cell, columns: list | None = None):
    """Records as a wide table: one row per distinct value of the ``index`` fields (sorted, as
    columns of the frame), one column per value of ``across`` (sorted, or ``columns``), and
    ``cell(record)`` where they meet; the last record wins, an empty cell where there is none."""
    pd = require_pandas("the reports")
    long = pd.DataFrame({**{k: [r[k] for r in records] for k in (*index, across)},
                         "cell": [cell(r) for r in records]})
    wide = long.groupby([*index, across], sort=True, dropna=False)["cell"].last().unstack(across)
    if columns is not None:
        wide = wide.reindex(columns=columns)
    wide.columns.name = None
    return wide.astype(object).where(wide.notna(), "").reset_index()


def _header_and_rows(table, index: str | None, column_name) -> tuple[list[str], list[list]]:
    headers = [column_name(c) for c in table.columns]
    rows = [list(values) for values in table.itertuples(index=False, name=None)]
    if index is not None:
        headers.insert(0, index)
        rows = [[label, *values] for label, values in zip(table.index, rows, strict=True)]
    return headers, rows


def markdown(table, *, index: str | None = None, padded: bool = False, column_name=str, cell=mdtext.cell) -> str:
    """``table`` as GitHub Markdown; ``index``: the heading of a first column that shows the
    frame's index (left out when None); ``padded`` lines the columns up so that the file also
    reads well as plain text. ``cell`` writes each cell and heading: by default deliberate
    emphasis (``**fastest**``) survives; ``mdtext.escape`` shows every cell literally; ``str``
    for cells the view has already written as Markdown."""
    headers, rows = _header_and_rows(table, index, column_name)
    cells = [[cell(h) for h in headers]] + [[cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))] if padded else [0] * len(headers)
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|" if padded else "|" + "---|" * len(headers))
    return "\n".join(lines)


def markdown_rows(headers: list, rows: list[list], padded: bool = False) -> str:
    """A table given as headers and rows, in Markdown (through ``frame``)."""
    return markdown(frame(rows, headers), padded=padded)


def html(table, *, index: str | None = None, attrs: str = "", column_name=str, cell=None) -> str:
    """``table`` as an HTML table. With ``index`` the frame's index is shown as row headings
    (``<th>``). ``cell(row_label, column, value)`` gives a body cell's attributes and inner HTML
    (a class by status, a title), escaping what it shows; by default a cell is its escaped text."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in ([index] if index is not None else [])
                   + [column_name(c) for c in table.columns])
    rows = []
    for label, values in zip(table.index, table.itertuples(index=False, name=None), strict=True):
        cells = [cell(label, column, value) if cell else ("", escape(str(value)))
                 for column, value in zip(table.columns, values, strict=True)]
        heading = f"<th>{escape(str(label))}</th>" if index is not None else ""
        rows.append(f"<tr>{heading}" + "".join(f"<td{a}>{inner}</td>" for a, inner in cells) + "</tr>")
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
