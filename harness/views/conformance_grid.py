"""The conformance cells as one pandas DataFrame, and the views the report draws from it: a
compact adapter x check grid per machine, and where adapters deviate from gather semantics."""

from __future__ import annotations

from dataclasses import dataclass

from harness.bench.slices import require_pandas
from harness.report.merge import ConformanceMatrix, adapter_label

COLUMNS = ["machine", "adapter", "check", "status", "detail", "examples", "duration_s"]
DECLARED_PREFIX = "declared deviation: "


def cells_frame(matrix: ConformanceMatrix):
    """One row per (machine, adapter, check) cell; adapters by their report label."""
    pd = require_pandas("the report")
    records = [(machine, adapter_label(key), check, cell.status, cell.detail, cell.examples, cell.duration_s)
               for (key, check, machine), cell in matrix.cells.items()]
    return pd.DataFrame.from_records(records, columns=COLUMNS)


@dataclass
class MachineGrid:
    """One machine's adapters (rows) x checks (columns): statuses, details, whole-adapter skips."""

    machine: str
    status: object  # DataFrame of status strings (NaN: not run)
    detail: object  # DataFrame of detail strings, same shape
    skipped: dict[str, str]  # adapter label -> why the whole adapter was skipped
    versions: dict[str, str]  # adapter label -> its framework versions, one line

    @property
    def adapters(self) -> list[str]:
        return list(self.status.index)

    @property
    def checks(self) -> list[str]:
        return list(self.status.columns)


def machine_grids(matrix: ConformanceMatrix):
    """A ``MachineGrid`` per machine, adapters and checks in the matrix's first-seen order."""
    cells = cells_frame(matrix)
    grids = []
    for machine in matrix.machines:
        keys = [k for k in matrix.adapters if (k, machine) in matrix.runs]
        labels = [adapter_label(k) for k in keys]
        checks = list(dict.fromkeys(c for k in keys for c in matrix.checks[k]
                                    if matrix.cell(k, c, machine) is not None))
        mine = cells[cells["machine"] == machine]
        status = mine.pivot(index="adapter", columns="check", values="status").reindex(index=labels, columns=checks)
        detail = mine.pivot(index="adapter", columns="check", values="detail").reindex(index=labels, columns=checks)
        runs = [matrix.runs[(k, machine)] for k in keys]
        grids.append(MachineGrid(
            machine, status, detail,
            skipped={adapter_label(r.key): r.skip_reason for r in runs if r.skip_reason},
            versions={adapter_label(r.key): ", ".join(f"{n} {v}" for n, v in r.versions.items()) for r in runs}))
    return grids


def deviations(matrix: ConformanceMatrix):
    """Per check family (``forward[float16]`` -> ``forward``) and status (``xfailed``: a declared
    deviation was observed; ``failed``: an undeclared one), the adapters concerned, each with its
    reason and the machines it was seen on. Columns: family, status, adapter, machines, reason."""
    pd = require_pandas("the report")
    cells = cells_frame(matrix)
    odd = cells[cells["status"].isin(["xfailed", "failed"])].copy()
    if odd.empty:
        return pd.DataFrame(columns=["family", "status", "adapter", "machines", "reason"])
    odd["family"] = odd["check"].str.replace(r"\[.*\]$", "", regex=True)
    odd["reason"] = odd["detail"].map(_reason)
    order = {name: i for i, name in enumerate(dict.fromkeys(odd["family"]))}
    grouped = (odd.groupby(["family", "status", "adapter"], sort=False)
               .agg(machines=("machine", lambda s: ", ".join(dict.fromkeys(s))),
                    reason=("reason", lambda s: next((r for r in s if r), "")))
               .reset_index())
    grouped["order"] = grouped["family"].map(order)
    return grouped.sort_values(["order", "status"], kind="stable").drop(columns="order").reset_index(drop=True)


def _reason(detail: str) -> str:
    """The first line of a cell's detail, without the 'declared deviation: ' prefix."""
    first = next((line.strip() for line in str(detail or "").splitlines() if line.strip()), "")
    return first.removeprefix(DECLARED_PREFIX)
