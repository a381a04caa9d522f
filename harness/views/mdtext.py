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
