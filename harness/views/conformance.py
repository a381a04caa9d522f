"""conformance.md and the README's conformance section: views of one machine's conformance
record (harness/conformance.py reads and writes it), built as pandas DataFrames."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.adapter import LAYER_OPTIONS
from harness.bench.slices import require_pandas
from harness.checks import CHECKS
from harness.platform import describe_conditions
from harness.schema import CHECK_STATUSES, check_seconds
from harness.views import mdtext, tables

STATUSES = CHECK_STATUSES
STATUS_MARK = {"passed": "pass", "failed": "**FAIL**", "xfailed": "xfail", "not_applicable": "n/a", "skipped": "skip"}
NOT_RUN = "–"
CHECK_ORDER = {c.name: i for i, c in enumerate(CHECKS)}
COUNTED = ("generated", *STATUSES, "examples")
OBSERVED = ("negative_index", "out_of_range", "index_dtypes", "gradient")


# --- the record as DataFrames -----------------------------------------------------------------
def adapters_frame(doc: dict):
    """One row per adapter (in the record's order): what it is, its counts, what it was seen to
    do, and the seconds its checks took."""
    pd = require_pandas("conformance.md")
    records = []
    for a in doc["adapters"]:
        observed = a.get("observed") or {}
        records.append({
            "adapter": a["id"], "framework": a.get("framework"), "variant": a.get("variant"),
            "mode": a.get("mode", "eager"), "device": a.get("device"),
            **{k: (a.get("counts") or {}).get(k, 0) for k in COUNTED},
            **{k: observed.get(k, "-") for k in OBSERVED},
            "seconds": check_seconds(a)})
    frame = pd.DataFrame.from_records(records, columns=["adapter", "framework", "variant", "mode", "device",
                                                        *COUNTED, *OBSERVED, "seconds"])
    frame["index_dtypes"] = frame["index_dtypes"].map(lambda v: (", ".join(v) or "-") if isinstance(v, list) else v)
    return frame


def cells_frame(doc: dict):
    """One row per adapter x check cell: its status, detail, seconds and the run that measured it."""
    pd = require_pandas("conformance.md")
    return pd.DataFrame.from_records(
        [(a["id"], c["check"], c.get("status"), c.get("detail") or "", c.get("duration_s") or 0.0, c.get("run_id"))
         for a in doc["adapters"] for c in a.get("checks", [])],
        columns=["adapter", "check", "status", "detail", "duration_s", "run_id"])


def status_matrix(doc: dict):
    """Checks down (in the checks' order), adapters across: each cell's status mark, ``NOT_RUN``
    where the adapter never ran the check."""
    cells = cells_frame(doc)
    adapters = [a["id"] for a in doc["adapters"]]
    checks = sorted(set(cells["check"]), key=lambda n: (CHECK_ORDER.get(n, len(CHECK_ORDER)), n))
    marks = cells.assign(mark=cells["status"].map(STATUS_MARK)).pivot(index="check", columns="adapter", values="mark")
    return marks.reindex(index=checks, columns=adapters).fillna(NOT_RUN)


def _literal(frame):
    """Every cell shown as written (ids and details come from third-party code)."""
    return frame.map(mdtext.escape)


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


COUNT_HEADINGS = {"adapter": "adapter", "framework": "framework", "variant": "variant", "mode": "mode",
                  "device": "device", "generated": "checks", "passed": "passed", "failed": "failed",
                  "xfailed": "xfailed", "not_applicable": "n/a", "skipped": "skipped", "examples": "examples",
                  "negative_index": "id -1", "out_of_range": "id >= vocab", "index_dtypes": "index dtypes accepted"}


def conformance_md(doc: dict) -> str:
    machine = doc["machine"]
    adapters = doc["adapters"]
    counts = adapters_frame(doc)[list(COUNT_HEADINGS)]
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
        tables.markdown(_literal(counts.rename(columns=COUNT_HEADINGS)), cell=str),
        "", "## Matrix (adapter x check)", "",
        tables.markdown(status_matrix(doc).rename(index=e, columns=e), index="check", cell=str),
    ]
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
    lines = ["", f"{heading} {table.title}", "", table.intro]
    if table.rows:
        lines += ["", tables.markdown(tables.frame(table.rows, table.headers), cell=mdtext.escape)]
    if table.note:
        lines += ["", mdtext.escape(table.note)]
    return lines


def families_sections(adapters: list[dict], heading: str = "##") -> list[str]:
    """The family views in Markdown, under ``heading``-level titles."""
    return [line for table in family_tables(adapters) for line in _family_markdown(table, heading)]


def _platform_rules_section(adapters: list[dict]) -> list[str]:
    """Each adapter's platform-keyed declarations and whether they hold on this machine."""
    rows = [[a["id"], ", ".join(rule["checks"]), describe_conditions(rule.get("when", {})),
             "yes" if rule.get("active") else "no"]
            for a in adapters for rule in (a.get("declared") or {}).get("platform_deviations") or []]
    if not rows:
        return []
    return ["", "## Platform-keyed declarations", "",
            "Deviations an adapter declares for some platforms only (device type, CPU, threads, versions). "
            "Where one holds its checks must fail as declared; where it does not they must pass. The "
            "cross-machine report lists the ones that held on no run (stale).", "",
            tables.markdown(tables.frame(rows, ["adapter", "checks", "where", "holds here"]), cell=mdtext.escape)]


def run_cost(doc: dict) -> str:
    """Where the last complete run's time went: its wall time on how many cores, and its
    seconds of checks by framework, eager and compiled apart (compiling is most of it)."""
    runs = [r for r in doc.get("runs", []) if r.get("complete") and not r.get("selection")]
    if not runs:
        return ""
    last = runs[-1]
    cells = cells_frame(doc).merge(adapters_frame(doc)[["adapter", "framework", "mode"]], on="adapter")
    cells = cells[(cells["run_id"] == last["run_id"]) & (cells["duration_s"] > 0)]
    if cells.empty:
        return ""  # a record from before the cells kept their durations
    named = cells["framework"].notna() & (cells["framework"] != "")
    cells = cells.assign(framework=cells["framework"].where(named, cells["adapter"]))
    spent = cells.groupby("framework", sort=False)["duration_s"].sum().to_frame("total")
    spent["compiled"] = cells[cells["mode"] != "eager"].groupby("framework")["duration_s"].sum()
    spent = spent.fillna(0.0).sort_values("total", ascending=False, kind="stable")
    total = spent["total"].sum()
    parts = [f"{name} {row.total:.0f} s ({row.total / total:.0%}; compiled {row.compiled:.0f} s)"
             for name, row in spent.iterrows()]
    cores = (doc.get("machine") or {}).get("cpu_count", "?")
    return (f"The last run of every default adapter ({mdtext.code(last['run_id'])}) took {last['wall_s']} s "
            f"of wall time on {cores} cores in {last['processes']} processes, {total:.0f} s of checks: "
            + ", ".join(parts) + ".")


def readme_section(doc: dict, results_dir: Path) -> str:
    """The README's summary of a committed conformance run (figures from conformance.json)."""
    adapters = doc["adapters"]
    frame = adapters_frame(doc)
    total = frame[["generated", *STATUSES]].sum()
    checked_s = frame["seconds"].sum()
    share = frame["seconds"] / checked_s if checked_s else frame["seconds"] * 0
    readme = frame[["adapter", *STATUSES, "negative_index", "out_of_range", "gradient"]].assign(
        time=[f"{s:.1f} s ({f:.0%})" for s, f in zip(frame["seconds"], share, strict=True)])
    readme.columns = ["adapter", "passed", "failed", "xfail", "n/a", "skipped", "id -1", "id >= vocab", "gradient",
                      "check time"]
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
        tables.markdown(_literal(readme), cell=str),
    ]
    return "\n".join(lines + families_sections(adapters, heading="####"))
