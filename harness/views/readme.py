"""Regenerate README sections from results, so no figure in the README is typed by hand.

A section is the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``."""

from __future__ import annotations

import re
from pathlib import Path

from harness.errors import HarnessError
from harness.results import atomic_write_text


def replace_section(readme: Path, name: str, body: str) -> None:
    readme = Path(readme)
    text = readme.read_text(encoding="utf-8")
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise HarnessError(f"{readme} has no '{start}' ... '{end}' markers: add them where the section goes")
    atomic_write_text(readme, pattern.sub(lambda _: f"{start}\n{body.strip()}\n{end}", text, count=1))
