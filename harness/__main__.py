"""python -m harness checks: every check name a declaration may use, with what it asserts."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv != ["checks"]:
        print("usage: python -m harness checks   (list the checks; names for Declared.deviations and "
              "Declared.not_applicable)", file=sys.stderr)
        return 2
    from harness.checks import CHECKS

    width = max(len(c.name) for c in CHECKS)
    for check in CHECKS:
        print(f"{check.name:<{width}}  {check.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
