"""How many deliberately broken adapters the checks catch: the harness testing itself.

    python -m harness.killrate MODULE [--control MODULE:FACTORY] [--out FILE] [--readme FILE]

MODULE's ``make_broken()`` returns adapters that each model one realistic bug (the first
line of the class docstring says which); the control must pass every check. A broken adapter
is *killed* when at least one check fails on it, and every check must fail on at least one
broken adapter (a check that cannot fail proves nothing). The run uses the derandomised ``ci``
Hypothesis profile unless ``HYPOTHESIS_PROFILE`` says otherwise, so the rate is
reproducible. Exit status 1 when any adapter survives or the control fails.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import HarnessError


def _bug(adapter) -> str:
    doc = (type(adapter).__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split()) or "(undocumented)"


def _judge(args: tuple[str, str]) -> dict:
    """Run every check on one adapter (in a worker process): what failed, what passed."""
    spec, adapter_id = args
    from harness import hypothesis_profiles
    from harness.checks import check_adapter
    from harness.registry import load_adapter

    hypothesis_profiles.load_default()
    adapter = load_adapter(spec, adapter_id=adapter_id)
    results = check_adapter(adapter)
    failed = [r.check for r in results if r.status == "failed"]
    return {"id": adapter.id, "bug": _bug(adapter), "killed": bool(failed), "killed_by": failed,
            "statuses": {r.check: r.status for r in results}}


def measure(module: str, control: str, jobs: int) -> dict:
    from harness.registry import load_adapter

    sys.path.insert(0, os.getcwd())
    broken_spec = module if ":" in module else f"{module}:make_broken"
    from harness.registry import _as_list, _import_factory

    broken = _as_list(_import_factory(broken_spec)(), broken_spec)
    # One faithful control per family of checks (lookups, bags): each must pass all of its own.
    controls = _as_list(_import_factory(control)(), control) if ":" in control else [load_adapter(control)]
    work = [(broken_spec, a.id) for a in broken] + [(control, c.id) for c in controls]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        judged = list(pool.map(_judge, work))
    mutants, control_results = judged[:len(broken)], judged[len(broken):]
    killed = sum(m["killed"] for m in mutants)
    return {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "profile": os.environ.get("HYPOTHESIS_PROFILE"), "module": broken_spec,
            "adapters": len(mutants), "killed": killed, "rate": killed / len(mutants) if mutants else 0.0,
            "control": {"id": ", ".join(c["id"] for c in control_results),
                        "failed": [f"{c['id']}: {check}" for c in control_results for check in c["killed_by"]]},
            "failed_by": failed_by(mutants), "mutants": mutants}


def failed_by(mutants: list[dict]) -> dict[str, list[str]]:
    """Every check (each dtype of a parametrised one) -> the broken adapters it fails. A check
    no broken adapter fails has never been shown able to fail: its list is empty."""
    from harness.checks import CHECKS_BY_NAME

    shown: dict[str, list[str]] = {name: [] for name in CHECKS_BY_NAME}
    for m in mutants:
        for check in m["killed_by"]:
            shown.setdefault(check, []).append(m["id"])
    return shown


def unproven(result: dict) -> list[str]:
    return sorted(name for name, ids in result["failed_by"].items() if not ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.killrate", description=__doc__.splitlines()[0])
    parser.add_argument("module", help="module (or module:factory) making the broken adapters")
    parser.add_argument("--control", default=None, help="module:factory of the faithful control "
                                                        "(default: MODULE:make_control)")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    parser.add_argument("--readme", type=Path, default=None, help="refresh this README's killrate section")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args(argv)
    os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")
    control = args.control or f"{args.module.partition(':')[0]}:make_control"
    try:
        result = measure(args.module, control, max(1, args.jobs))
        if args.out:
            from harness.results import atomic_write_json

            atomic_write_json(args.out, result)
        from harness.views.selftests import killrate_section  # the view imports this module

        text = killrate_section(result)
        if args.readme:
            from harness.views.readme import replace_section

            replace_section(args.readme, "killrate", text)
    except HarnessError as exc:
        print(f"killrate: {exc}", file=sys.stderr)
        return 2
    print(text)
    survivors = [m["id"] for m in result["mutants"] if not m["killed"]]
    if survivors or result["control"]["failed"] or unproven(result):
        print(f"killrate: survivors {survivors}; control failed {result['control']['failed']}; "
              f"checks never shown to fail {unproven(result)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
