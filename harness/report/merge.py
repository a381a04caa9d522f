"""Merging per-machine results into report-shaped data.

Conformance becomes one matrix (adapter x check x machine). Benchmarks are never merged
across machines: each machine gets its own tables, so no timing column mixes hardware.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.platform import describe_conditions, rule_coverage
from harness.report.load import MachineResults, load_root
from harness.schema import CHECK_STATUSES, MACHINE_FIELDS
from harness.views.formats import fmt_bytes

AdapterKey = tuple[str, str]  # (adapter id, device)


@dataclass
class Cell:
    status: str
    detail: str = ""
    examples: int | None = None
    duration_s: float | None = None


@dataclass
class AdapterRun:
    """One adapter's conformance run on one machine."""

    key: AdapterKey
    skip_reason: str | None
    versions: dict
    counts: dict[str, int]
    mismatches: list[tuple[str, Any, Any]]  # (capability, declared, observed)


@dataclass
class ConformanceMatrix:
    machines: list[str]
    adapters: list[AdapterKey] = field(default_factory=list)
    checks: dict[AdapterKey, list[str]] = field(default_factory=dict)
    cells: dict[tuple[AdapterKey, str, str], Cell] = field(default_factory=dict)
    runs: dict[tuple[AdapterKey, str], AdapterRun] = field(default_factory=dict)
    # Platform-keyed declarations with the runs where each held (harness.platform.rule_coverage).
    rules: list[dict] = field(default_factory=list)

    def stale_rules(self) -> list[dict]:
        return [r for r in self.rules if r["stale"]]

    def stale_rule_rows(self) -> list[list[str]]:
        """adapter, checks, where it is declared to hold, the machines that ran it."""
        return [[r["adapter"], ", ".join(r["checks"]), describe_conditions(r["when"]),
                 ", ".join(sorted({run.split(":")[0] for run in r["ran_on"]}))] for r in self.stale_rules()]

    def cell(self, adapter: AdapterKey, check: str, machine: str) -> Cell | None:
        return self.cells.get((adapter, check, machine))

    def row_statuses(self, adapter: AdapterKey, check: str) -> list[str | None]:
        return [c.status if (c := self.cell(adapter, check, m)) else None for m in self.machines]

    def all_passed(self, adapter: AdapterKey, check: str) -> bool:
        """True when the check passed on every machine that ran the adapter."""
        statuses = [s for s in self.row_statuses(adapter, check) if s is not None]
        return bool(statuses) and all(s == "passed" for s in statuses)

    def failures(self) -> list[tuple[str, AdapterKey, str, Cell]]:
        return [(m, a, c, cell) for (a, c, m), cell in self.cells.items() if cell.status == "failed"]

    def total(self, status: str) -> int:
        return sum(1 for cell in self.cells.values() if cell.status == status)


def adapter_label(key: AdapterKey) -> str:
    adapter_id, device = key
    return adapter_id if device in ("", "cpu") or adapter_id.endswith(device) else f"{adapter_id} ({device})"


def _same(declared: Any, observed: Any) -> bool:
    """Lists (index dtypes) are sets here: the same dtypes in another order agree."""
    if isinstance(declared, list) and isinstance(observed, list):
        return sorted(map(str, declared)) == sorted(map(str, observed))
    return declared == observed


def _mismatches(adapter: dict) -> list[tuple[str, Any, Any]]:
    declared = adapter.get("declared") or {}
    observed = adapter.get("observed") or {}
    return [(k, declared.get(k), v) for k, v in observed.items() if k in declared and not _same(declared[k], v)]


def conformance_matrix(machines: list[MachineResults]) -> ConformanceMatrix:
    """Machines with a conformance.json, merged; rows keep first-seen order of adapters and checks."""
    with_conf = [m for m in machines if m.conformance is not None]
    matrix = ConformanceMatrix(machines=[m.machine_id for m in with_conf])
    for machine in with_conf:
        for adapter in machine.conformance["adapters"]:
            key: AdapterKey = (adapter["id"], str(adapter.get("device") or "cpu"))
            if key not in matrix.checks:
                matrix.adapters.append(key)
                matrix.checks[key] = []
            checks = adapter.get("checks") or []
            # Counts are derived from the checks themselves so the matrix and totals never disagree.
            counts = Counter(c["status"] for c in checks)
            matrix.runs[(key, machine.machine_id)] = AdapterRun(
                key=key, skip_reason=adapter.get("skip_reason"), versions=adapter.get("versions") or {},
                counts={s: counts.get(s, 0) for s in CHECK_STATUSES}, mismatches=_mismatches(adapter))
            for check in checks:
                name = check["check"]
                if name not in matrix.checks[key]:
                    matrix.checks[key].append(name)
                matrix.cells[(key, name, machine.machine_id)] = Cell(
                    status=check["status"], detail=str(check.get("detail") or ""),
                    examples=check.get("examples"), duration_s=check.get("duration_s"))
    matrix.rules = rule_coverage({m.machine_id: m.conformance for m in with_conf})
    return matrix


# ---- machine metadata ------------------------------------------------------------------------

PREFERRED_KEYS = (
    "machine_id", "cpu_model", "cpu_count", "cpu_affinity", "memory_bytes", "l2_cache_bytes",
    "l3_cache_bytes", "gpus", "os", "python", "git.commit", "git.dirty",
)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for k, v in value.items():
            flat.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return flat
    return {prefix: value} if prefix else {}


def format_value(key: str, value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if ("bytes" in key or "mem_budget" in key) and isinstance(value, (int, float)):
        return fmt_bytes(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "; ".join(", ".join(str(v) for v in item.values()) if isinstance(item, dict) else str(item)
                         for item in value)
    return str(value)


# bench_meta.json keys that are bulky or shown elsewhere (adapter declarations, column lists,
# per-part bookkeeping, the crossover table); everything else small is listed per machine.
BENCH_META_HIDDEN = frozenset({"machine", "adapters", "columns", "bytes_formula", "parts", "plots",
                               "profile_settings", "ignored_files", "self_check"})
MAX_VALUE_CHARS = 200


def _small(value: Any) -> bool:
    """Worth a metadata row: a scalar, or a short list / flat object of scalars."""
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, str):
        return len(value) <= MAX_VALUE_CHARS
    if isinstance(value, scalar):
        return True
    if isinstance(value, list):
        return len(value) <= 8 and all(isinstance(v, (*scalar, dict)) for v in value)
    if isinstance(value, dict):
        return len(value) <= 12 and all(isinstance(v, scalar) for v in value.values())
    return False


def _versions(adapters: Any) -> dict[str, str]:
    """Framework versions from a list (conformance) or a mapping (bench_meta) of adapters."""
    items = adapters.values() if isinstance(adapters, dict) else adapters if isinstance(adapters, list) else []
    versions: dict[str, str] = {}
    for adapter in items:
        if isinstance(adapter, dict) and isinstance(adapter.get("versions"), dict):
            versions.update({str(k): str(v) for k, v in adapter["versions"].items() if v})
    return versions


def machine_metadata(machine: MachineResults) -> list[tuple[str, str]]:
    """(key, value) rows for one machine, from the conformance and bench runs together.

    A key both runs recorded with different values (say the git commit) shows both."""
    conf = _flatten(machine.conformance_machine())
    bench: dict[str, Any] = {}
    if machine.conformance:
        for key in ("created", "hypothesis_profile", "duration_s"):
            if key in machine.conformance:
                conf[f"conformance.{key}"] = machine.conformance[key]
        conf.update({f"versions.{k}": v for k, v in _versions(machine.conformance["adapters"]).items()})
    for key, value in (machine.bench_meta or {}).items():
        if key in BENCH_META_HIDDEN or "crossover" in key.lower() or not _small(value):
            continue
        # Machine fields kept flat in bench_meta line up with conformance's; run fields get a prefix.
        name = key if key in MACHINE_FIELDS or key == "versions" else f"bench.{key}"
        bench.update(_flatten(value, name) if isinstance(value, dict) else {name: value})
    bench.update({f"versions.{k}": v for k, v in _versions((machine.bench_meta or {}).get("adapters")).items()})
    if isinstance((machine.bench_meta or {}).get("machine"), dict):
        bench.update(_flatten(machine.bench_meta["machine"]))  # the machine record wins over copies
    keys = [k for k in PREFERRED_KEYS if k in conf or k in bench]
    keys += sorted(k for k in {*conf, *bench} if k not in keys)
    rows = []
    for key in keys:
        in_conf, in_bench = key in conf, key in bench
        a = format_value(key, conf.get(key))
        b = format_value(key, bench.get(key))
        if in_conf and in_bench and a != b:
            rows.append((key, f"{a} (conformance) / {b} (bench)"))
        else:
            rows.append((key, a if in_conf else b))
    return rows


# Crossover entries: the columns worth a glance, in this order; others are appended.
CROSSOVER_COLUMNS = ("onehot_adapter", "device", "dtype", "pass", "dim", "distribution", "n_ids",
                     "verdict")
CROSSOVER_NOISE = frozenset({"framework", "gather_adapter", "measured_from", "measured_to", "ratio_at_smallest",
                             "monotonic", "crossover_vocab", "per_vocab", "indistinguishable_at", "ci_at_smallest"})


def crossover_table(value: Any) -> tuple[str, list[str], list[list[str]]] | None:
    """The crossover summary as (caption, headers, rows), cut down to the headline slice.

    A list of entries keeps float32 / uniform ones when there are any (the same slice as the
    pivots); columns that hold the same value in every row move to the caption."""
    if not (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
        shaped = as_table(value)
        return ("", *shaped) if shaped else None
    entries = value
    caption = []
    for key, wanted in (("dtype", "float32"), ("distribution", "uniform")):
        if any(e.get(key) == wanted for e in entries):
            entries = [e for e in entries if e.get(key) == wanted]
    keys = list(dict.fromkeys(k for e in entries for k in e))
    keys = [k for k in CROSSOVER_COLUMNS if k in keys] + [k for k in keys if k not in CROSSOVER_COLUMNS]
    columns = []
    for key in keys:
        values = [e.get(key) for e in entries]
        if key in CROSSOVER_NOISE or any(isinstance(v, (list, dict)) for v in values):
            continue
        if key != "verdict" and len(entries) > 1 and len({str(v) for v in values}) == 1:
            caption.append(f"{key} {format_value(key, values[0])}")
            continue
        columns.append(key)
    # Numbers in numeric order (dim 64 before 256), whatever order the file had.
    entries = sorted(entries, key=lambda e: [(0, v, "") if isinstance(v := e.get(k), (int, float)) else (1, 0, str(v))
                                             for k in columns])
    rows = [[format_value(k, e.get(k)) for k in columns] for e in entries]
    return ("in every row: " + ", ".join(caption) if caption else "", columns, rows)


def crossover(machine: MachineResults) -> Any:
    """The bench run's crossover summary (any key naming it), or None."""
    for key, value in (machine.bench_meta or {}).items():
        if "crossover" in key.lower() and value not in (None, "", [], {}):
            return value
    return None


def as_table(value: Any) -> tuple[list[str], list[list[str]]] | None:
    """A JSON value of unknown shape as (headers, rows) when it is tabular, else None.

    Handles a list of objects, an object of objects (keyed rows) and a flat object."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        headers = list(dict.fromkeys(k for item in value for k in item))
        return headers, [[format_value(h, item.get(h)) for h in headers] for item in value]
    if isinstance(value, dict) and value:
        if all(isinstance(v, dict) for v in value.values()):
            inner = list(dict.fromkeys(k for v in value.values() for k in v))
            return ["", *inner], [[str(k), *(format_value(h, v.get(h)) for h in inner)]
                                  for k, v in value.items()]
        flat = _flatten(value)
        return ["", "value"], [[k, format_value(k, v)] for k, v in flat.items()]
    return None


@dataclass
class ReportData:
    """Everything the renderers need, read once from a results root."""

    root: Path
    machines: list[MachineResults]
    problems: list[str]
    matrix: ConformanceMatrix
    generated: str


def collect(root: Path) -> ReportData:
    machines, problems = load_root(root)
    return ReportData(root=Path(root), machines=machines, problems=problems,
                      matrix=conformance_matrix(machines),
                      generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
