"""python -m harness checks | frameworks: the check names a declaration may use; the registered
frameworks with their adapters (``--ci-matrix``: as the JSON the CI workflow's matrix reads)."""

from __future__ import annotations

import json
import sys

USAGE = ("usage: python -m harness checks            (the checks; names for Declared.deviations and "
         "Declared.not_applicable)\n"
         "       python -m harness frameworks [--ci-matrix]   (registered frameworks and their adapters)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["checks"]:
        return _checks()
    if argv[:1] == ["frameworks"] and argv[1:] in ([], ["--ci-matrix"]):
        return _frameworks(ci_matrix=argv[1:] == ["--ci-matrix"])
    print(USAGE, file=sys.stderr)
    return 2


def _checks() -> int:
    from harness.checks import CHECKS

    width = max(len(c.name) for c in CHECKS)
    for check in CHECKS:
        print(f"{check.name:<{width}}  {check.summary}")
    return 0


def _frameworks(ci_matrix: bool) -> int:
    from harness import registry

    if ci_matrix:
        print(json.dumps(registry.ci_matrix(), separators=(",", ":")))
        return 0
    found = registry.registered()
    left_out = registry.opt_in()
    for name, framework in found.frameworks.items():
        env = " ".join(f"{k}={v}" for k, v in framework.env.items())
        print(f"{name}  (devices: {', '.join(framework.devices)}{'; env: ' + env if env else ''})")
        for adapter_id in framework.adapters:
            print(f"  {adapter_id}{'  [opt-in]' if adapter_id in left_out else ''}")
    for name, why in found.broken.items():
        print(f"{name}  BROKEN: {why}")
    return 1 if found.broken else 0


if __name__ == "__main__":
    sys.exit(main())
