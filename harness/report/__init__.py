"""One report over every ``results/<machine-id>/`` folder, and run-to-run comparison.

Usage::

    python -m harness.report [--results DIR]
        reads every results/<machine-id>/ (conformance.json, bench.csv, bench_meta.json,
        plots/*.png) and writes results/REPORT.md and a self-contained results/report.html
    python -m harness.report --compare OLD [--new NEW] [--force] [--floor 0.05]
        compares OLD (a machine folder, a results root, a conformance.json or a bench.csv)
        with the current results of the same machine; prints it and writes results/COMPARE.md

Exit codes:
    0  done; every results file was read
    2  bad usage, or a comparison refused (different machines without --force, an OLD or
       NEW that holds no results, or several machines and no way to pick one)
    3  done, but some results file was missing, partial or corrupt: each is named on stderr
       (one line each) and the report was built from the rest
    4  nothing to report: no readable results under the results root (nothing written)

The report only writes REPORT.md, report.html and COMPARE.md at the top of the results
root, atomically; it never writes inside a machine's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.report.merge import ReportData, collect
from harness.results import atomic_write_text
from harness.views import report_html, report_md

REPORT_MD = "REPORT.md"
REPORT_HTML = "report.html"
COMPARE_MD = "COMPARE.md"

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SKIPPED = 3
EXIT_EMPTY = 4


@dataclass
class BuildResult:
    data: ReportData
    written: list[Path] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if not self.written:
            return EXIT_EMPTY
        return EXIT_SKIPPED if self.data.problems else EXIT_OK


def build_report(root: Path) -> BuildResult:
    """Read ``root`` and write REPORT.md and report.html beside the machine folders.

    Nothing is written when no machine folder has readable results."""
    root = Path(root)
    data = collect(root)
    result = BuildResult(data)
    if not data.machines:
        return result
    for name, render in ((REPORT_MD, report_md.render), (REPORT_HTML, report_html.render)):
        atomic_write_text(root / name, render(data))
        result.written.append(root / name)
    return result


__all__ = ["BuildResult", "build_report", "COMPARE_MD", "REPORT_HTML", "REPORT_MD"]
