"""The one table writer of every view: a pandas DataFrame as a Markdown or an HTML table.

Every cell is escaped on the way out (ids, reasons and details come from third-party code),
so a view builds its frame from the results (pivot, groupby, a list of rows) and never
writes table markup itself. Cells are shown as ``str`` shows them; a view formats numbers
(harness/views/formats.py) before they go in."""

from __future__ import annotations

from html import escape

from harness.bench.slices import require_pandas
from harness.views import mdtext


def frame(rows: list[list], columns: list):
    """A table given row by row, as a DataFrame that keeps every value as it is (no dtype
    inference: None stays None, 3 stays 3)."""
    pd = require_pandas("the reports")
    return pd.DataFrame(rows, columns=list(columns), dtype=object) if rows else pd.DataFrame(columns=list(columns))


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


def html(table, *, index: str | None = None, raw: bool = False, attrs: str = "") -> str:
    """``table`` as an HTML table; cells are escaped unless ``raw`` (cells already built as HTML)."""
    headers, rows = _header_and_rows(table, index, str)
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
