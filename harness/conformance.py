"""The machine's conformance record: ``conformance.json`` and ``conformance.md``.

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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import mdtext
from harness.adapter import LAYER_OPTIONS
from harness.checks import CHECKS
from harness.errors import CorruptResults, HarnessError
from harness.platform import describe_conditions
from harness.results import (
    atomic_write_json,
    atomic_write_text,
    current_status,
    locked,
    read_json,
    set_aside,
)
from harness.schema import CHECK_STATUSES, CONFORMANCE_SCHEMA

SCHEMA = CONFORMANCE_SCHEMA
STATUSES = CHECK_STATUSES
STATUS_MARK = {"passed": "pass", "failed": "**FAIL**", "xfailed": "xfail", "not_applicable": "n/a", "skipped": "skip"}
NOT_RUN = "–"
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
        atomic_write_text(results_dir / "conformance.md", render_markdown(doc))
    return doc


# --- conformance.md -------------------------------------------------------------------------
def _first_line(text: str, limit: int = 220) -> str:
    lines = (text or "").strip().splitlines()
    return mdtext.escape(lines[0][:limit]) if lines else ""


def _provenance(doc: dict) -> str:
    runs = doc.get("runs", [])
    if not runs:
        return ""
    last = runs[-1]
    what = "every selected check" if last.get("complete") else "an incomplete run"
    selection = last.get("selection")
    scope = f"selection {mdtext.escape(selection)}" if selection else "all adapters"
    profiles = ", ".join(f"{mdtext.code(p)}: {n} cells" for p, n in doc.get("profiles", {}).items())
    return (f"Last run {mdtext.code(last.get('run_id'))} ({scope}, profile {mdtext.code(last.get('profile'))}, "
            f"{what}) measured {last.get('cells')} cells; cells it did not select keep their earlier "
            f"values. Cells by Hypothesis profile: {profiles}.")


def render_markdown(doc: dict) -> str:
    machine = doc["machine"]
    adapters = doc["adapters"]
    names = sorted({c["check"] for a in adapters for c in a["checks"]},
                   key=lambda n: (CHECK_ORDER.get(n, len(CHECK_ORDER)), n))
    e = mdtext.escape
    lines = [
        f"# Conformance on {mdtext.code(machine.get('machine_id'))}",
        "",
        f"{e(machine.get('cpu_model'))}, {machine.get('cpu_count')} cores; Hypothesis profile "
        f"{mdtext.code(doc.get('hypothesis_profile'))}; "
        f"commit {mdtext.code((machine.get('git') or {}).get('commit'))}; "
        f"written {doc['created']}.",
        "",
        _provenance(doc),
        "",
        "Legend: pass = matches gather semantics and the adapter's declaration; **FAIL** = "
        "does not (details below, with a repro snippet; a crash or a timeout is a failure too); "
        f"xfail = a declared deviation that was observed; n/a = the check does not apply to this adapter "
        f"(declared so, or a dtype or variant it does not have); skip = the adapter could not run here "
        f"(framework missing; reasons below); {NOT_RUN} = never selected on this machine.",
        "",
        "## Counts and observed behaviour",
        "",
        "| adapter | framework | variant | mode | device | checks | passed | failed | xfailed | n/a | skipped | "
        "examples | id -1 | id >= vocab | index dtypes accepted |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for a in adapters:
        c, o = a["counts"], a.get("observed", {})
        lines.append(
            f"| {e(a['id'])} | {e(a.get('framework'))} | {e(a.get('variant'))} | {e(a.get('mode', 'eager'))} | "
            f"{e(a.get('device'))} | "
            f"{c['generated']} | {c['passed']} | {c['failed']} | {c['xfailed']} | {c.get('not_applicable', 0)} | "
            f"{c['skipped']} | {c['examples']} | "
            f"{e(o.get('negative_index', '-'))} | {e(o.get('out_of_range', '-'))} | "
            f"{e(', '.join(o.get('index_dtypes', []))) or '-'} |")
    lines += ["", "## Matrix (adapter x check)", ""]
    lines.append("| check | " + " | ".join(e(a["id"]) for a in adapters) + " |")
    lines.append("|---|" + "---|" * len(adapters))
    by_adapter = [{c["check"]: c for c in a["checks"]} for a in adapters]
    for name in names:
        row = [STATUS_MARK[cells[name]["status"]] if name in cells else NOT_RUN for cells in by_adapter]
        lines.append(f"| {e(name)} | " + " | ".join(row) + " |")
    lines += families_sections(adapters)
    lines += _platform_rules_section(adapters)
    lines += ["", "## Failures, declared deviations and skips", ""]
    for a in adapters:
        if a.get("load_error"):
            lines.append(f"- **{e(a['id'])}** could not be loaded: {_first_line(a['load_error'])}")
        elif a.get("skip_reason"):
            lines.append(f"- **{e(a['id'])}** skipped: {_first_line(a['skip_reason'])}")
            continue
        for check in a["checks"]:
            if check["status"] == "failed":
                lines += [f"### {e(a['id'])} :: {e(check['check'])} FAILED", "",
                          mdtext.code_block(check["detail"]), ""]
        for check in a["checks"]:
            if check["status"] in ("xfailed", "not_applicable", "skipped"):
                lines.append(f"- {e(a['id'])} :: {e(check['check'])} ({check['status'].replace('_', ' ')}): "
                             f"{_first_line(check['detail'])}")
    return "\n".join(lines) + "\n"


# Observed behaviour a compiled adapter is compared on with its eager twin: key -> label.
COMPARED_OBSERVATIONS = {"negative_index": "id -1", "out_of_range": "id >= vocab",
                         "index_dtypes": "index dtypes accepted", "gradient": "gradient",
                         "accumulated_float16": "3000 float16 unit gradients sum to",
                         "accumulated_bfloat16": "1000 bfloat16 unit gradients sum to"}
# Statuses that say nothing about the behaviour (the check did not run on one side).
_NOT_COMPARED = {"not_applicable", "skipped"}


def _observed_text(value) -> str:
    return ", ".join(sorted(value)) if isinstance(value, list) else str(value)


def compiling_changes(adapters: list[dict]) -> list[list[str]]:
    """Where a compiled adapter (``eager_twin`` set) behaves otherwise than its eager twin on
    the same machine: [compiled id, eager id, what, eager, compiled] rows, observed behaviour
    first (index dtypes compared as sets), then every check whose status differs."""
    by_id = {a["id"]: a for a in adapters}
    rows = []
    for a in adapters:
        twin = by_id.get(a.get("eager_twin") or "")
        if twin is None or a.get("skip_reason") or twin.get("skip_reason"):
            continue
        mine, theirs = a.get("observed") or {}, twin.get("observed") or {}
        for key, label in COMPARED_OBSERVATIONS.items():
            if key in mine and key in theirs and _observed_text(mine[key]) != _observed_text(theirs[key]):
                rows.append([a["id"], twin["id"], label, _observed_text(theirs[key]), _observed_text(mine[key])])
        eager_cells = {c["check"]: c for c in twin.get("checks", [])}
        for cell in a.get("checks", []):
            other = eager_cells.get(cell["check"])
            if other is None or {cell["status"], other["status"]} & _NOT_COMPARED or cell["status"] == other["status"]:
                continue
            rows.append([a["id"], twin["id"], f"check {cell['check']}", _status_text(other), _status_text(cell)])
    return rows


def _status_text(cell: dict, limit: int = 160) -> str:
    """A cell's status with the first line of its detail (plain text)."""
    lines = (cell.get("detail") or "").strip().splitlines()
    return f"{cell['status']}: {lines[0][:limit]}" if lines else cell["status"]


@dataclass(frozen=True)
class FamilyTable:
    """One family view (what compiling changes, layer options, bags) as plain text cells, for
    every renderer: Markdown here, HTML in the report."""

    title: str
    intro: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""  # a closing line under the table


def compiling_table(adapters: list[dict]) -> FamilyTable | None:
    rows = compiling_changes(adapters)
    by_id = {a["id"]: a for a in adapters}
    compiled = [a["id"] for a in adapters if a.get("eager_twin") in by_id]
    if not compiled:
        return None
    same = [i for i in compiled if i not in {r[0] for r in rows}]
    return FamilyTable(
        "What compiling changes",
        "Each compiled adapter (jax.jit, tf.function(jit_compile=True), torch.compile, Keras' jit_compile) "
        "against its eager twin on this machine: the observed behaviour and the check statuses that differ. "
        "Everything not listed is the same.",
        ["compiled", "eager twin", "what", "eager", "compiled"], rows,
        f"No difference from the eager twin: {', '.join(same)}." if same else "")


def options_table(adapters: list[dict]) -> FamilyTable | None:
    """Each adapter that offers a layer option: the status of every option's check, with what
    the masked positions held (mask_zero)."""
    rows = []
    for a in adapters:
        cells = {c["check"]: c for c in a.get("checks", [])}
        marks = []
        for option in LAYER_OPTIONS:
            status = (cells.get(f"option_{option}") or {}).get("status")
            marks.append(STATUS_MARK.get(status, NOT_RUN))
        if all(m in ("n/a", "skip", NOT_RUN) for m in marks):  # no option, or the adapter never ran
            continue
        observed = a.get("observed") or {}
        if "mask_zero_output" in observed:
            marks[-1] += (f" (masked positions: output {observed['mask_zero_output']}, "
                          f"gradient {observed.get('mask_zero_gradient', '-')})")
        rows.append([a["id"], *marks])
    if not rows:
        return None
    return FamilyTable("Layer options",
                       "Each option's check against the oracle extended for it; n/a: the layer has no such option.",
                       ["adapter", *LAYER_OPTIONS], rows)


def bags_table(adapters: list[dict]) -> FamilyTable | None:
    """Each bag adapter: the status of every bag check, and what an empty bag returned per mode."""
    names = [c.name for c in CHECKS if c.family == "bag"]
    rows = []
    for a in adapters:
        if not (a.get("declared") or {}).get("bags") or a.get("skip_reason"):
            continue
        cells = {c["check"]: c["status"] for c in a.get("checks", [])}
        empty = (a.get("observed") or {}).get("empty_bag") or {}
        rows.append([a["id"], *(STATUS_MARK.get(cells.get(n), NOT_RUN) for n in names),
                     ", ".join(f"{m}: {o}" for m, o in empty.items()) or "-"])
    if not rows:
        return None
    return FamilyTable(
        "Bags",
        "Each bag adapter's checks against the bag oracle (harness/bags.py), and what an empty bag returned "
        "in each mode (observed; declared in BagDeclared.empty_bag).",
        ["adapter", *(n.removeprefix("bag_") for n in names), "empty bag"], rows)


# The cross-machine report's section over the family views (Markdown and HTML alike).
FAMILIES_TITLE = "Compiled modes, layer options and bags"
FAMILIES_INTRO = ("Compiled adapters against their eager twins, the layer options and the bag (segment reduction) "
                  "adapters, per machine; their cells are also in the matrix above.")


def family_tables(adapters: list[dict]) -> list[FamilyTable]:
    """What compiling changes, the layer options and the bags: the views conformance.md, the
    README and the cross-machine report (Markdown and HTML) share."""
    tables = (compiling_table(adapters), options_table(adapters), bags_table(adapters))
    return [t for t in tables if t is not None]


def _family_markdown(table: FamilyTable, heading: str) -> list[str]:
    e = mdtext.escape
    lines = ["", f"{heading} {table.title}", "", table.intro]
    if table.rows:
        lines += ["", "| " + " | ".join(e(h) for h in table.headers) + " |", "|" + "---|" * len(table.headers)]
        lines += ["| " + " | ".join(e(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", e(table.note)]
    return lines


def families_sections(adapters: list[dict], heading: str = "##") -> list[str]:
    """The family views in Markdown, under ``heading``-level titles."""
    return [line for table in family_tables(adapters) for line in _family_markdown(table, heading)]


def _platform_rules_section(adapters: list[dict]) -> list[str]:
    """Each adapter's platform-keyed declarations and whether they hold on this machine."""
    rows = [(a["id"], rule) for a in adapters for rule in (a.get("declared") or {}).get("platform_deviations") or []]
    if not rows:
        return []
    e = mdtext.escape
    lines = ["", "## Platform-keyed declarations", "",
             "Deviations an adapter declares for some platforms only (device type, CPU, threads, versions). "
             "Where one holds its checks must fail as declared; where it does not they must pass. The "
             "cross-machine report lists the ones that held on no run (stale).", "",
             "| adapter | checks | where | holds here |", "|---|---|---|---|"]
    for adapter_id, rule in rows:
        where = describe_conditions(rule.get("when", {}))
        lines.append(f"| {e(adapter_id)} | {e(', '.join(rule['checks']))} | {e(where)} "
                     f"| {'yes' if rule.get('active') else 'no'} |")
    return lines


def run_cost(doc: dict) -> str:
    """Where the last complete run's time went: its wall time on how many cores, and its
    seconds of checks by framework, eager and compiled apart (compiling is most of it)."""
    runs = [r for r in doc.get("runs", []) if r.get("complete") and not r.get("selection")]
    if not runs:
        return ""
    last = runs[-1]
    seconds: dict[str, list[float]] = {}
    for a in doc["adapters"]:
        spent = sum(c.get("duration_s") or 0 for c in a["checks"] if c.get("run_id") == last["run_id"])
        if spent:
            split = seconds.setdefault(a.get("framework") or a["id"], [0.0, 0.0])
            split[a.get("mode", "eager") != "eager"] += spent
    total = sum(map(sum, seconds.values()))
    if not total:
        return ""  # a record from before the cells kept their durations
    parts = [f"{name} {sum(split):.0f} s ({sum(split) / total:.0%}; compiled {split[1]:.0f} s)"
             for name, split in sorted(seconds.items(), key=lambda kv: -sum(kv[1]))]
    cores = (doc.get("machine") or {}).get("cpu_count", "?")
    return (f"The last run of every default adapter ({mdtext.code(last['run_id'])}) took {last['wall_s']} s "
            f"of wall time on {cores} cores in {last['processes']} processes, {total:.0f} s of checks: "
            + ", ".join(parts) + ".")


def readme_section(doc: dict, results_dir: Path) -> str:
    """The README's summary of a committed conformance run (figures from conformance.json)."""
    adapters = doc["adapters"]
    total = {k: sum(a["counts"].get(k, 0) for a in adapters) for k in ("generated", *STATUSES)}
    e = mdtext.escape
    lines = [
        f"Measured on {mdtext.code(doc['machine']['machine_id'])} ({e(doc['machine'].get('cpu_model'))}, "
        f"{doc['machine'].get('cpu_count')} cores), Hypothesis profile {mdtext.code(doc.get('hypothesis_profile'))}: "
        f"{len(adapters)} adapters, {total['generated']} checks: {total['passed']} passed, {total['failed']} failed, "
        f"{total['xfailed']} declared deviations observed (xfail), {total['not_applicable']} not applicable, "
        f"{total['skipped']} skipped. "
        f"`nox -s conformance` took {doc.get('wall_s', '?')} s of wall time after installation "
        f"({doc.get('processes', '?')} processes) "
        f"(full matrix: [{results_dir}/conformance.md]({results_dir}/conformance.md)).",
        "",
        *([cost, ""] if (cost := run_cost(doc)) else []),
        "| adapter | passed | failed | xfail | n/a | skipped | id -1 | id >= vocab | gradient | check time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    seconds = {a["id"]: sum(c.get("duration_s") or 0 for c in a.get("checks", [])) for a in adapters}
    for a in adapters:
        c, o = a["counts"], a.get("observed", {})
        share = seconds[a["id"]] / sum(seconds.values()) if sum(seconds.values()) else 0
        lines.append(f"| {e(a['id'])} | {c['passed']} | {c['failed']} | {c['xfailed']} | "
                     f"{c.get('not_applicable', 0)} | {c['skipped']} | "
                     f"{e(o.get('negative_index', '-'))} | {e(o.get('out_of_range', '-'))} | "
                     f"{e(o.get('gradient', '-'))} | {seconds[a['id']]:.1f} s ({share:.0%}) |")
    return "\n".join(lines + families_sections(adapters, heading="####"))


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
            atomic_write_text(args.results_dir / "conformance.md", render_markdown(doc))
            print(f"rewrote {args.results_dir / 'conformance.md'}")
            return 0
        from harness.readme import replace_section

        replace_section(args.readme, "conformance", readme_section(doc, args.results_dir))
        print(f"updated the conformance section of {args.readme}")
        return 0
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
