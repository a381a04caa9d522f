"""The machine's conformance record: ``conformance.json`` (its views: harness/views/conformance.py).

    python -m harness.conformance run [--jobs N] [--timeout S] [-- PYTEST ARGS]
    python -m harness.conformance readme results/<machine-id>
    python -m harness.conformance render results/<machine-id>   # conformance.md again, nothing re-measured

``run`` (harness/supervisor.py) runs the checks in isolated processes and merges what they
measured into ``results/<machine-id>/conformance.json``. The merge is by cell (adapter x
check) under the folder's lock: a run replaces the cells it measured and keeps every other
one, so a selective run (some adapters, ``-k``, another Hypothesis profile) never erases
the rest, and two runs finishing together never lose each other's cells. Every cell says
which run and profile measured it; the document lists the runs.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from harness.checks import CHECKS
from harness.errors import CorruptResults, HarnessError
from harness.results import (
    atomic_write_json,
    atomic_write_text,
    current_status,
    locked,
    read_json,
    set_aside,
)
from harness.schema import CHECK_STATUSES, CONFORMANCE_SCHEMA
from harness.views.conformance import conformance_md, readme_section
from harness.views.readme import replace_section

SCHEMA = CONFORMANCE_SCHEMA
STATUSES = CHECK_STATUSES
KEEP_RUNS = 50  # run summaries kept in the document (the cells keep their own run ids)
CHECK_ORDER = {c.name: i for i, c in enumerate(CHECKS)}


def cell(result: dict, *, profile: str | None, run_id: str | None = None) -> dict:
    """One adapter x check outcome as stored: the result plus who measured it."""
    return {"check": result["check"], "status": result["status"], "detail": result.get("detail", ""),
            "examples": result.get("examples", 0), "duration_s": round(result.get("duration_s") or 0.0, 4),
            "observed": result.get("observed") or {}, "profile": profile, "run_id": run_id}


def adapter_entry(info: dict, cells: dict[str, dict]) -> dict:
    """An adapter's description with its cells (in check order), counts and observations."""
    checks = sorted(cells.values(), key=lambda c: (CHECK_ORDER.get(c["check"], len(CHECK_ORDER)), c["check"]))
    counts = dict.fromkeys(("generated", *STATUSES, "examples"), 0)
    observed: dict = {}
    for c in checks:
        counts["generated"] += 1
        counts[c["status"]] += 1
        counts["examples"] += c.get("examples", 0)
        observed.update(c.get("observed") or {})
    return {**info, "observed": observed, "counts": counts, "checks": checks}


# --- merging a run into the machine's document ------------------------------------------
def _cells_of(entry: dict, default_profile: str | None) -> dict[str, dict]:
    """An existing entry's cells by check name (documents from before per-cell provenance
    get the document's profile)."""
    out = {}
    for c in entry.get("checks", []):
        out[c["check"]] = {**c, "status": current_status(c["status"], entry),
                           "profile": c.get("profile", default_profile), "run_id": c.get("run_id")}
    return out


def current(doc: dict) -> dict:
    """A stored document in today's vocabulary (statuses, counts), for rendering; nothing re-measured."""
    profile = doc.get("hypothesis_profile")
    adapters = []
    for entry in doc.get("adapters", []):
        info = {k: v for k, v in entry.items() if k not in ("observed", "counts", "checks")}
        adapters.append(adapter_entry(info, _cells_of(entry, profile)))
    return {**doc, "adapters": adapters}


def merge_run(previous: dict | None, run: dict) -> dict:
    """``previous`` (the machine's document, or None) updated with the cells ``run`` measured.

    ``run``: run_id, profile, machine, adapters {id: description}, cells {id: {check: cell}},
    and a summary (selection, started, wall_s, processes, complete, problems)."""
    previous = previous or {}
    default_profile = previous.get("hypothesis_profile")
    entries: dict[str, dict] = {}
    for entry in previous.get("adapters", []):
        info = {k: v for k, v in entry.items() if k not in ("observed", "counts", "checks")}
        entries[entry["id"]] = {"info": info, "cells": _cells_of(entry, default_profile)}
    for aid, info in run["adapters"].items():
        slot = entries.setdefault(aid, {"info": {}, "cells": {}})
        measured = run["cells"].get(aid, {})
        if measured or not slot["info"]:
            slot["info"] = {**info, "run_id": run["run_id"]}
        slot["cells"].update(measured)
    adapters = [adapter_entry(e["info"], e["cells"]) for e in entries.values()]
    profiles: dict[str, int] = {}
    for a in adapters:
        for c in a["checks"]:
            profiles[str(c.get("profile"))] = profiles.get(str(c.get("profile")), 0) + 1
    summary = {k: run.get(k) for k in ("run_id", "profile", "selection", "started", "wall_s", "processes",
                                       "complete", "problems")}
    summary["cells"] = sum(len(v) for v in run["cells"].values())
    runs = [*previous.get("runs", []), summary][-KEEP_RUNS:]
    doc = {
        "schema": SCHEMA,
        "machine": run["machine"],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hypothesis_profile": next(iter(profiles)) if len(profiles) == 1 else "mixed",
        "profiles": profiles,
        "runs": runs,
        "adapters": adapters,
    }
    # The README quotes the wall time of the last run that measured everything.
    complete = [r for r in runs if r.get("complete") and not r.get("selection")]
    if complete:
        doc["wall_s"], doc["processes"] = complete[-1].get("wall_s"), complete[-1].get("processes")
    return doc


def record_run(results_dir: Path, run: dict, stream=None) -> dict:
    """Merge ``run`` into ``results_dir``'s conformance.json and rewrite conformance.md, under
    the folder's lock. An unreadable conformance.json is set aside (renamed), never lost."""
    stream = stream or sys.stderr  # looked up per call: the one at import may be closed
    results_dir = Path(results_dir)
    target = results_dir / "conformance.json"
    with locked(results_dir, "conformance", stream):
        previous = None
        if target.exists():
            try:
                previous = read_json(target)
                if not isinstance(previous, dict) or previous.get("schema") != SCHEMA:
                    raise CorruptResults(f"{target}: not a {SCHEMA} document")
            except CorruptResults as exc:
                kept = set_aside(target)
                stream.write(f"conformance: {exc}; kept it as {kept.name} and started a new record\n")
                previous = None
        doc = merge_run(previous, run)
        atomic_write_json(target, doc)
        atomic_write_text(results_dir / "conformance.md", conformance_md(doc))
    return doc


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m harness.conformance")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the checks in isolated processes and record them",
                         description="Arguments after -- go to every pytest process (e.g. -k, -x).")
    run.add_argument("--jobs", type=int, default=None, help="processes at once (default: the cores available)")
    run.add_argument("--timeout", type=float, default=None,
                     help="seconds one check may run before it is killed and reported (default 600, "
                          "or EMBEDDING_HARNESS_CHECK_TIMEOUT)")
    readme = sub.add_parser("readme", help="refresh the README's conformance section from a results folder")
    readme.add_argument("results_dir", type=Path)
    readme.add_argument("--readme", type=Path, default=Path("README.md"))
    render = sub.add_parser("render", help="rewrite a results folder's conformance.md from its conformance.json "
                                           "(after a renderer or vocabulary change; nothing is re-measured)")
    render.add_argument("results_dir", type=Path)
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1:]
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            from harness.supervisor import run_conformance

            return run_conformance(jobs=args.jobs, timeout=args.timeout, pytest_args=pytest_args)
        doc = current(read_json(args.results_dir / "conformance.json"))
        if args.command == "render":
            atomic_write_text(args.results_dir / "conformance.md", conformance_md(doc))
            print(f"rewrote {args.results_dir / 'conformance.md'}")
            return 0
        replace_section(args.readme, "conformance", readme_section(doc, args.results_dir))
        print(f"updated the conformance section of {args.readme}")
        return 0
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
