"""Merge the per-process conformance parts into ``conformance.json`` and ``conformance.md``.

    python -m harness.conformance merge results/<machine-id>

Each nox part (core, keras-tensorflow, keras-jax, keras-torch) writes
``parts/conformance-<part>.json``. An adapter can appear in several parts (a Keras adapter
is reported as skipped by the processes running another backend); the merge keeps the
part that ran it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from harness.errors import HarnessError
from harness.results import atomic_write_json, atomic_write_text, read_json

SCHEMA = "embedding-harness/conformance/1"
STATUS_MARK = {"passed": "pass", "failed": "**FAIL**", "xfailed": "xfail", "skipped": "skip"}


def merge_parts(parts: list[dict]) -> dict:
    if not parts:
        raise HarnessError("no conformance parts to merge: run nox -s conformance first")
    adapters: dict[str, dict] = {}
    for part in parts:
        for entry in part["adapters"]:
            entry = {**entry, "part": part["part"]}
            previous = adapters.get(entry["id"])
            if previous is None or (previous.get("skip_reason") and not entry.get("skip_reason")):
                adapters[entry["id"]] = entry
    first = parts[0]
    return {
        "schema": SCHEMA,
        "machine": first["machine"],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hypothesis_profile": first.get("hypothesis_profile"),
        "duration_s": round(sum(p.get("duration_s", 0) for p in parts), 2),
        "parts": {p["part"]: {"duration_s": p.get("duration_s"), "created": p.get("created")} for p in parts},
        "adapters": list(adapters.values()),
    }


def _cell(check: dict) -> str:
    return STATUS_MARK.get(check["status"], check["status"])


def _first_line(text: str) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line.replace("|", "\\|")[:220]


def render_markdown(doc: dict) -> str:
    machine = doc["machine"]
    adapters = doc["adapters"]
    checks = [c["check"] for c in adapters[0]["checks"]] if adapters else []
    lines = [
        f"# Conformance on `{machine['machine_id']}`",
        "",
        f"{machine.get('cpu_model')}, {machine.get('cpu_count')} cores; Hypothesis profile "
        f"`{doc.get('hypothesis_profile')}`; {doc.get('duration_s')} s over {len(doc.get('parts', {}))} "
        f"processes; commit `{(machine.get('git') or {}).get('commit')}`; written {doc['created']}.",
        "",
        "Legend: pass = matches gather semantics and the adapter's declaration; **FAIL** = "
        "does not (details below, with a repro snippet); xfail = a declared deviation that was "
        "observed; skip = not applicable or framework missing (reason below).",
        "",
        "## Counts and observed behaviour",
        "",
        "| adapter | framework | variant | device | checks | passed | failed | xfailed | skipped | "
        "examples | id -1 | id >= vocab | index dtypes accepted |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in adapters:
        c, o = a["counts"], a.get("observed", {})
        lines.append(
            f"| {a['id']} | {a['framework']} | {a['variant']} | {a['device']} | {c['generated']} | "
            f"{c['passed']} | {c['failed']} | {c['xfailed']} | {c['skipped']} | {c['examples']} | "
            f"{o.get('negative_index', '-')} | {o.get('out_of_range', '-')} | "
            f"{', '.join(o.get('index_dtypes', [])) or '-'} |")
    lines += ["", "## Matrix (adapter x check)", ""]
    lines.append("| check | " + " | ".join(a["id"] for a in adapters) + " |")
    lines.append("|---|" + "---|" * len(adapters))
    for i, name in enumerate(checks):
        lines.append(f"| {name} | " + " | ".join(_cell(a["checks"][i]) for a in adapters) + " |")
    lines += ["", "## Failures, declared deviations and skips", ""]
    for a in adapters:
        if a.get("skip_reason"):
            lines.append(f"- **{a['id']}** skipped: {_first_line(a['skip_reason'])}")
            continue
        for check in a["checks"]:
            if check["status"] == "failed":
                lines += [f"### {a['id']} :: {check['check']} FAILED", "", "```", check["detail"].strip(), "```", ""]
        notes = [c for c in a["checks"] if c["status"] in ("xfailed", "skipped")]
        for check in notes:
            lines.append(f"- {a['id']} :: {check['check']} ({check['status']}): {_first_line(check['detail'])}")
    return "\n".join(lines) + "\n"


def merge_dir(results_dir: Path, wall_s: float | None = None) -> dict:
    parts_dir = Path(results_dir) / "parts"
    files = sorted(parts_dir.glob("conformance-*.json"))
    doc = merge_parts([read_json(f) for f in files])
    if wall_s is not None:
        doc["wall_s"] = wall_s  # all processes, start to merge, as the nox session saw it
    atomic_write_json(Path(results_dir) / "conformance.json", doc)
    atomic_write_text(Path(results_dir) / "conformance.md", render_markdown(doc))
    return doc


def readme_section(doc: dict, results_dir: Path) -> str:
    """The README's summary of a committed conformance run (figures from conformance.json)."""
    adapters = doc["adapters"]
    total = {k: sum(a["counts"][k] for a in adapters) for k in ("generated", "passed", "failed", "xfailed", "skipped")}
    lines = [
        f"Measured on `{doc['machine']['machine_id']}` ({doc['machine'].get('cpu_model')}, "
        f"{doc['machine'].get('cpu_count')} cores), Hypothesis profile `{doc.get('hypothesis_profile')}`: "
        f"{len(adapters)} adapters, {total['generated']} checks: {total['passed']} passed, {total['failed']} failed, "
        f"{total['xfailed']} declared deviations observed (xfail), {total['skipped']} skipped. "
        f"`nox -s conformance` took {doc.get('wall_s', '?')} s of wall time after installation "
        f"({len(doc.get('parts', {}))} processes, {doc.get('duration_s')} s inside pytest) "
        f"(full matrix: [{results_dir}/conformance.md]({results_dir}/conformance.md)).",
        "",
        "| adapter | passed | failed | xfail | skipped | id -1 | id >= vocab | gradient |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for a in adapters:
        c, o = a["counts"], a.get("observed", {})
        lines.append(f"| {a['id']} | {c['passed']} | {c['failed']} | {c['xfailed']} | {c['skipped']} | "
                     f"{o.get('negative_index', '-')} | {o.get('out_of_range', '-')} | {o.get('gradient', '-')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.conformance")
    sub = parser.add_subparsers(dest="command", required=True)
    merge = sub.add_parser("merge", help="merge parts/conformance-*.json of one machine folder")
    merge.add_argument("results_dir", type=Path)
    merge.add_argument("--wall-s", type=float, default=None, help="wall time of the whole run, recorded")
    readme = sub.add_parser("readme", help="refresh the README's conformance section from a results folder")
    readme.add_argument("results_dir", type=Path)
    readme.add_argument("--readme", type=Path, default=Path("README.md"))
    args = parser.parse_args(argv)
    try:
        if args.command == "readme":
            from harness.readme import replace_section

            doc = read_json(args.results_dir / "conformance.json")
            replace_section(args.readme, "conformance", readme_section(doc, args.results_dir))
            print(f"updated the conformance section of {args.readme}")
            return 0
        doc = merge_dir(args.results_dir, args.wall_s)
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = sum(a["counts"]["failed"] for a in doc["adapters"])
    print(f"wrote {args.results_dir}/conformance.json and conformance.md "
          f"({len(doc['adapters'])} adapters, {failed} failed checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
