"""Command line for ``python -m harness.report`` (see the package docstring for exit codes)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.report import (
    COMPARE_MD,
    EXIT_EMPTY,
    EXIT_OK,
    EXIT_SKIPPED,
    EXIT_USAGE,
    REPORT_HTML,
    REPORT_MD,
    build_report,
)
from harness.report import compare as cmp
from harness.report.load import holds_machine_results
from harness.results import atomic_write_text, results_root
from harness.views import compare_md

EPILOG = f"""\
examples:
  python -m harness.report                      # {REPORT_MD} + {REPORT_HTML} over results/*/
  python -m harness.report --results ci-results  # another results root
  python -m harness.report --compare old-results/linux-x86_64-epyc-16c-64g
  python -m harness.report --compare old/conformance.json --new results/gha-torch

comparison verdicts, ratio = new / old median: where both runs kept their per-round times
(raw/<run-id>/), a 95 % bootstrap interval of the ratio decides: "indistinguishable" when it
contains 1, "slower"/"faster" when it lies above/below 1 and the ratio is beyond 1 +/- FLOOR,
else "unchanged"; rows without rounds fall back to |new - old| <= max(IQR old + IQR new,
FLOOR * old median) -> "unchanged", else "faster" or "slower".

exit codes:
  0  done; every results file was read
  2  bad usage, or comparison refused (different machines without --force; no results found)
  3  done, but some results file was missing, partial or corrupt (each named on stderr)
  4  nothing to report: no readable results under the results root
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.report",
        description=f"Build {REPORT_MD} and a self-contained {REPORT_HTML} from every "
                    "results/<machine-id>/ folder, or compare two runs of one machine.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", metavar="DIR", type=Path, default=None,
                   help="results root holding one folder per machine id; the report files are written "
                        "here (default: $EMBEDDING_HARNESS_RESULTS or ./results)")
    group = p.add_argument_group("comparison")
    group.add_argument("--compare", metavar="OLD", type=Path,
                       help="compare OLD (a results/<machine-id>/ folder, a results root, a conformance.json "
                            f"or a bench.csv) with the new run; prints the result and writes {COMPARE_MD}")
    group.add_argument("--new", metavar="NEW", type=Path,
                       help="the new run (folder or file, as for OLD); default: the machine folder in "
                            "--results with OLD's machine id, or its only machine folder")
    group.add_argument("--force", action="store_true",
                       help="compare even when OLD and NEW come from different machine ids")
    group.add_argument("--floor", metavar="FRACTION", type=float, default=cmp.DEFAULT_FLOOR,
                       help="smallest relative change that counts as faster/slower "
                            f"(default {cmp.DEFAULT_FLOOR}, i.e. {cmp.DEFAULT_FLOOR * 100:.0f}%%)")
    return p


def _warn(problems: list[str]) -> None:
    for line in problems:
        print(f"skipped: {line}", file=sys.stderr)


def run_report(root: Path) -> int:
    if not root.is_dir():
        print(f"{root}: no such folder; run nox -s conformance or nox -s bench first", file=sys.stderr)
        return EXIT_EMPTY
    result = build_report(root)
    _warn(result.data.problems)
    if not result.written:
        print(f"{root}: no readable results in any machine folder; nothing written", file=sys.stderr)
        return EXIT_EMPTY
    ids = ", ".join(m.machine_id for m in result.data.machines)
    print(f"wrote {' and '.join(str(p) for p in result.written)} ({len(result.data.machines)} machine(s): {ids})")
    return result.exit_code


def run_compare(root: Path, old: Path, new: Path | None, force: bool, floor: float) -> int:
    problems: list[str] = []
    try:
        old_side, new_side = cmp.resolve(old, new or root, problems, force)
    except cmp.CompareRefused as exc:
        _warn(problems)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    deltas = cmp.bench_deltas(old_side.results.bench_rows or [], new_side.results.bench_rows or [], floor)
    changes = cmp.conformance_changes(old_side.results.conformance, new_side.results.conformance)
    text = compare_md.render(old_side, new_side, deltas, changes, floor, problems)
    _warn(problems)
    sys.stdout.write(text)
    atomic_write_text(root / COMPARE_MD, text)
    print(f"wrote {root / COMPARE_MD}", file=sys.stderr)
    return EXIT_SKIPPED if problems else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    root = args.results if args.results is not None else results_root()
    if holds_machine_results(root):
        # Writing the report there would put files inside a machine's own folder (and read its
        # profile-<name>/ benchmark folders as machines).
        parser().error(f"--results {root} is a machine folder; give the results root ({root.parent})")
    if args.compare is None:
        if args.new is not None or args.force:
            parser().error("--new and --force only apply with --compare")
        return run_report(root)
    if not 0 <= args.floor < 1:
        parser().error("--floor must be a fraction in [0, 1)")
    return run_compare(root, args.compare, args.new, args.force, args.floor)


if __name__ == "__main__":
    sys.exit(main())
