"""Text that goes into Markdown files: escaped, so ids and details print as written.

Adapter ids, check details and reasons come from third-party code; in a Markdown table or
a GitHub job summary a ``<script>``, a ``|`` or a stray backtick would otherwise become
markup or break the table."""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_\[\]|#])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def escape(text: object) -> str:
    """One line of inline text: whitespace collapsed, HTML and Markdown syntax neutralised."""
    flat = " ".join(str(text).split())
    flat = "".join(_HTML.get(ch, ch) for ch in flat)
    return _SPECIAL.sub(r"\\\1", flat)


def cell(text: object) -> str:
    """A table cell that may hold deliberate emphasis (``**fastest**``): only what could turn
    into HTML or break the row is neutralised."""
    flat = " ".join(str(text).split())
    return "".join(_HTML.get(ch, ch) for ch in flat).replace("|", "\\|")


def table(headers: list, rows: list[list], padded: bool = False) -> str:
    """A Markdown table, every cell through ``cell``; ``padded`` lines the columns up so that
    the file also reads well as plain text."""
    cells = [[cell(h) for h in headers]] + [[cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))] if padded else [0] * len(headers)
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|" if padded else "|" + "---|" * len(headers))
    return "\n".join(lines)


def frame_table(frame, corner: str, column_name=str) -> str:
    """A pandas DataFrame as a Markdown table: its index down the first column (headed
    ``corner``), its columns across (named by ``column_name``), every cell through ``cell``."""
    return table([corner, *(column_name(c) for c in frame.columns)],
                 [[label, *values] for label, values in zip(frame.index, frame.itertuples(index=False), strict=True)])


def code(text: object) -> str:
    """Inline code: shown literally (no escaping needed inside), fenced by more backticks
    than the text holds in a row."""
    flat = " ".join(str(text).split())
    longest = max((len(m) for m in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def code_block(text: str) -> str:
    """``text`` verbatim in a fenced block whose fence is longer than any backtick run in it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"
