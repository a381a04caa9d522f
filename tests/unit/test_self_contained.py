"""Every reason, comment, document and committed result cites public sources or the project's own
files, never a file outside the repository: users of the project have only the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The folders beside the repository that only its developers have.
OUTSIDE = re.compile(r"(?<![\w-])shared/(reference|evidence|hooks)\b|\.\./(shared|\.library)\b")
SKIPPED_DIRS = {".git", ".nox", "mutants", "node_modules", "__pycache__", ".devprobe", ".whl", "raw"}
TEXT = {".py", ".md", ".toml", ".yml", ".yaml", ".json", ".csv", ".html", ".txt", ".cfg", ".ini", ""}


def _project_files():
    for path in ROOT.rglob("*"):
        parts = set(path.relative_to(ROOT).parts)
        if path.is_file() and not parts & SKIPPED_DIRS and not any(p.endswith(".egg-info") for p in parts) \
                and path.suffix in TEXT:
            yield path


def test_no_file_cites_a_path_outside_the_repository():
    cited = {}
    for path in _project_files():
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        found = sorted({m.group(0) for m in OUTSIDE.finditer(text)})
        if found:
            cited[str(path.relative_to(ROOT))] = found
    assert cited == {}


def test_the_pattern_finds_what_it_must_and_nothing_else():
    assert OUTSIDE.search("as measured (shared/reference/semantics.md §3)")
    assert OUTSIDE.search("see ../shared/evidence/h100/README.md")
    assert OUTSIDE.search("the tools in ../.library/README.md")
    assert not OUTSIDE.search("a part label '../core' is refused; shared/ memory; a shared/stream; shared_reference")
