"""Comparing two runs of the same machine: benchmark ratios with a noise-aware verdict, and
conformance checks whose status changed.

Which runs: OLD is what ``--compare`` names (a ``results/<machine-id>/`` folder, a results
root, or one ``conformance.json`` / ``bench.csv`` file). NEW is ``--new`` if given, else the
folder of the current results root with OLD's machine id (or its only machine folder). The
machine id is the one recorded in the files, falling back to the folder name, so a copied
folder still matches. Different machine ids are refused unless forced: their timings say
nothing about the code.

Verdict rule, per benchmark row measured (status ok) in both runs. With per-round samples on
both sides (basis "bootstrap 95 %"), the 95 % bootstrap interval [low, high] of
new median / old median (rounds resampled with replacement, fixed seed:
``harness.bench.crossover.ratio_interval``) decides, with ratio = new.median_s / old.median_s::

    low <= 1 <= high                      ->  indistinguishable   (the runs cannot be told apart)
    low > 1 and ratio > 1 + floor         ->  slower              (floor: 5 % by default)
    high < 1 and ratio < 1 - floor        ->  faster
    otherwise                             ->  unchanged           (a real difference, under the floor)

A side's samples come from the row's raw pytest-benchmark file, ``raw/<run_id>/bench-<part>.json``
beside its bench.csv (run_id from bench_meta.json for tables older than that column): the entry
with the row's key, its ``extra_info["samples"]`` (the harness's own per-round times), else its
``stats["data"]``. They are used only with at least 2 rounds, all finite and positive, and when
their median is the row's median_s (to bench.csv's 6 digits): other samples are not the ones
behind the row (a GPU row timed by device events keeps wall times in ``stats["data"]``).

Without such samples on both sides (older runs, untimed smoke rows, pruned raw files; basis
"IQR rule")::

    tolerance = max(old.iqr_s + new.iqr_s, floor * old.median_s)
    |new.median_s - old.median_s| <= tolerance  ->  unchanged
    otherwise faster (new < old) or slower (new > old)

so a difference inside the runs' combined interquartile ranges, or under the relative floor,
is noise. A raw file a row names that is missing or unreadable is one problem line (naming the
file) and its rows fall back to the IQR rule. Rows whose status changed (ok -> error, say) are
listed with both statuses; rows present on one side only are "added" or "removed"; rows skipped
(or errored) in both runs are "not measured".
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from harness.bench.crossover import ratio_interval
from harness.bench.parts import RAW_DIR
from harness.errors import HarnessError
from harness.report.load import (
    BENCH_FILE,
    BENCH_META_FILE,
    CONFORMANCE_FILE,
    MachineResults,
    holds_machine_results,
    is_machine_dir,
    load_bench_csv,
    load_bench_meta,
    load_conformance,
    load_machine,
)
from harness.report.merge import adapter_label
from harness.schema import bench_key

DEFAULT_FLOOR = 0.05
VERDICT_ORDER = ("slower", "faster", "status changed", "unchanged", "indistinguishable", "not measured", "added",
                 "removed")
INTERVAL_LEVEL = 0.95
BASIS_BOOTSTRAP = "bootstrap 95 %"
BASIS_IQR = "IQR rule"
# bench.csv keeps 6 significant digits: a median read back is within 5e-6 of the samples' one.
MEDIAN_AGREEMENT = 1e-5


class CompareRefused(HarnessError):
    """The two sides cannot be compared (different machines, ambiguous or empty input)."""


@dataclass
class Side:
    label: str  # what the user named, for messages
    machine_id: str
    results: MachineResults


@dataclass
class BenchDelta:
    key: tuple
    verdict: str
    old: dict | None
    new: dict | None
    ci: tuple[float, float] | None = None  # bootstrap interval of the ratio, when the basis is bootstrap
    basis: str | None = None  # BASIS_BOOTSTRAP or BASIS_IQR for rows measured on both sides

    @property
    def ratio(self) -> float | None:
        if self.old and self.new and self.old["status"] == self.new["status"] == "ok":
            return self.new["median_s"] / self.old["median_s"]
        return None


@dataclass
class StatusChange:
    adapter: str
    check: str
    old: str
    new: str


def verdict(old_median: float, old_iqr: float | None, new_median: float, new_iqr: float | None,
            floor: float = DEFAULT_FLOOR) -> str:
    """faster / slower / unchanged for one pair of measurements (rule in the module docstring)."""
    tolerance = max((old_iqr or 0.0) + (new_iqr or 0.0), floor * old_median)
    diff = new_median - old_median
    if abs(diff) <= tolerance:
        return "unchanged"
    return "faster" if diff < 0 else "slower"


def interval_verdict(ratio: float, low: float, high: float, floor: float = DEFAULT_FLOOR) -> str:
    """indistinguishable / slower / faster / unchanged from the bootstrap interval (module docstring)."""
    if low <= 1 <= high:
        return "indistinguishable"
    if low > 1 and ratio > 1 + floor:
        return "slower"
    if high < 1 and ratio < 1 - floor:
        return "faster"
    return "unchanged"


def _raw_samples(path: Path, problems: list[str]) -> dict[tuple, list[float]]:
    """Row key -> per-round seconds of one raw pytest-benchmark file; {} and a problem line if unreadable."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        found = {}
        for entry in doc["benchmarks"]:
            samples = entry["extra_info"].get("samples") or entry["stats"].get("data")
            if samples:
                found[bench_key(entry["extra_info"])] = [float(x) for x in samples]
        return found
    except FileNotFoundError:
        why = "missing"
    except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8, a sample that is no number
        why = f"unreadable ({exc})"
    except (KeyError, TypeError, AttributeError) as exc:
        why = f"not a pytest-benchmark file ({type(exc).__name__}: {exc})"
    problems.append(" ".join(f"{path}: {why}; its rows are compared by the IQR rule, without an interval".split()))
    return {}


def _behind_row(samples: list[float] | None, row: dict) -> bool:
    """Samples that can be the row's: finite, positive, and giving the row's median (see the docstring)."""
    if not samples or not all(math.isfinite(x) and x > 0 for x in samples):
        return False
    return abs(statistics.median(samples) - row["median_s"]) <= MEDIAN_AGREEMENT * row["median_s"]


def attach_samples(old: MachineResults, new: MachineResults, problems: list[str]) -> None:
    """Give each row measured on both sides its per-round samples (in memory, key "samples"), where its
    raw file has them; each missing or unreadable raw file adds one problem line."""
    measured = [{bench_key(r): r for r in side.bench_rows or [] if r["status"] == "ok"} for side in (old, new)]
    both = measured[0].keys() & measured[1].keys()
    for side in (old, new):
        folder = side.path / side.bench_subdir
        meta_run = (side.bench_meta or {}).get("run_id")
        files: dict[Path, dict] = {}
        for row in side.bench_rows or []:
            run_id, part = row.get("run_id") or meta_run, row.get("part")
            if row["status"] != "ok" or bench_key(row) not in both or not run_id or not part:
                continue
            # A part carried over from an earlier run is renamed "part@run"; its file keeps the plain name.
            path = folder / RAW_DIR / str(run_id) / f"bench-{str(part).split('@')[0]}.json"
            if path not in files:
                files[path] = _raw_samples(path, problems)
            samples = files[path].get(bench_key(row))
            if _behind_row(samples, row):
                row["samples"] = samples


def _side_id(results: MachineResults) -> str:
    return results.declared_machine_id() or results.machine_id


def load_side(path: Path, problems: list[str]) -> MachineResults | list[MachineResults]:
    """A file or machine folder as one MachineResults; a results root as its machine folders."""
    path = Path(path)
    if not path.exists():
        raise CompareRefused(f"{path}: no such file or folder")
    if path.is_file():
        if path.name == BENCH_META_FILE:  # stands for its run: compare the bench.csv beside it
            path = path.parent / BENCH_FILE
        if path.suffix not in (".csv", ".json"):
            raise CompareRefused(f"{path}: expected a {CONFORMANCE_FILE}, a {BENCH_FILE} or a folder")
        machine = MachineResults(machine_id=path.parent.name, path=path.parent)
        try:
            if path.suffix == ".csv":
                machine.bench_rows = load_bench_csv(path)
                if (path.parent / BENCH_META_FILE).exists():  # for the machine id it records
                    machine.bench_meta = load_bench_meta(path.parent / BENCH_META_FILE)
            else:
                machine.conformance = load_conformance(path)
        except HarnessError as exc:
            problems.append(str(exc))
        return machine
    if holds_machine_results(path):  # results at its top, or only a profile-<name>/ benchmark below it
        return load_machine(path, problems)
    machines = [load_machine(p, problems) for p in sorted(path.iterdir()) if is_machine_dir(p)]
    return [m for m in machines if m.has_results]


def _pick(candidates: list[MachineResults], wanted: str | None, label: str) -> MachineResults:
    if wanted:
        same = [m for m in candidates if wanted in (m.machine_id, _side_id(m))]
        if same:
            return same[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise CompareRefused(f"{label}: holds no readable results")
    names = ", ".join(m.machine_id for m in candidates)
    raise CompareRefused(f"{label}: holds several machines ({names}) and none matches "
                         f"{wanted!r}; point at one results/<machine-id>/ folder")


def bench_profile(side: MachineResults) -> str | None:
    profile = (side.bench_meta or {}).get("profile")
    return profile if isinstance(profile, str) else None


def resolve(old_path: Path, new_path: Path, problems: list[str], force: bool) -> tuple[Side, Side]:
    """Both sides of a comparison, refusing different machines unless ``force``."""
    old_loaded = load_side(old_path, problems)
    new_loaded = load_side(new_path, problems)
    if isinstance(old_loaded, list):
        # OLD is a results root: its machine that NEW also has (if exactly one), else its only one.
        new_ids = ({_side_id(m) for m in new_loaded} if isinstance(new_loaded, list)
                   else {_side_id(new_loaded)})
        common = [m for m in old_loaded if _side_id(m) in new_ids]
        old = _pick(common if len(common) == 1 else old_loaded, None, str(old_path))
    else:
        old = old_loaded
    if not old.has_results:
        raise CompareRefused(f"{old_path}: holds no readable results")
    old_id = _side_id(old)
    new = _pick(new_loaded, old_id, str(new_path)) if isinstance(new_loaded, list) else new_loaded
    if not new.has_results:
        raise CompareRefused(f"{new_path}: holds no readable results")
    new_id = _side_id(new)
    if old_id != new_id and not force:
        raise CompareRefused(f"refusing to compare different machines: old is {old_id!r} ({old.path}), new is "
                             f"{new_id!r} ({new.path}); their timings are not comparable (--force to override)")
    old_profile, new_profile = bench_profile(old), bench_profile(new)
    if old_profile and new_profile and old_profile != new_profile:
        if not force:
            raise CompareRefused(f"refusing to compare benchmark profiles {old_profile!r} (old) and {new_profile!r} "
                                 f"(new): their rounds and sizes differ, so the ratios would not mean anything "
                                 f"(compare runs of one profile, or --force to override)")
        problems.append(f"forced: old is profile {old_profile!r}, new is profile {new_profile!r}; "
                        f"differences may come from the profiles, not the code")
    def label(named: Path, side: MachineResults) -> str:  # the file named, else the machine folder used
        return str(named) if Path(named).is_file() else str(side.path)

    attach_samples(old, new, problems)
    return Side(label(old_path, old), old_id, old), Side(label(new_path, new), new_id, new)


def _enough(row: dict) -> bool:
    return len(row.get("samples") or ()) >= 2


def bench_deltas(old_rows: list[dict], new_rows: list[dict], floor: float = DEFAULT_FLOOR) -> list[BenchDelta]:
    old = {bench_key(r): r for r in old_rows}
    new = {bench_key(r): r for r in new_rows}
    deltas = []
    for key in [*old, *(k for k in new if k not in old)]:
        a, b = old.get(key), new.get(key)
        if a is None:
            deltas.append(BenchDelta(key, "added", None, b))
        elif b is None:
            deltas.append(BenchDelta(key, "removed", a, None))
        elif a["status"] == b["status"] == "ok" and _enough(a) and _enough(b):
            low, high = ratio_interval(b["samples"], a["samples"], INTERVAL_LEVEL)  # median(new) / median(old)
            deltas.append(BenchDelta(key, interval_verdict(b["median_s"] / a["median_s"], low, high, floor), a, b,
                                     (low, high), BASIS_BOOTSTRAP))
        elif a["status"] == b["status"] == "ok":
            deltas.append(BenchDelta(key, verdict(a["median_s"], a.get("iqr_s"), b["median_s"], b.get("iqr_s"),
                                                  floor), a, b, None, BASIS_IQR))
        elif a["status"] != b["status"]:
            deltas.append(BenchDelta(key, "status changed", a, b))
        else:  # skipped (or errored) both times: no timing to judge
            deltas.append(BenchDelta(key, "not measured", a, b))
    return deltas


def _checks(conformance: dict | None) -> dict[tuple[str, str], str]:
    """(adapter label, check) -> status; a whole-adapter skip is one "(adapter)" entry."""
    out = {}
    for adapter in (conformance or {}).get("adapters", []):
        label = adapter_label((adapter["id"], str(adapter.get("device") or "cpu")))
        if adapter.get("skip_reason"):
            out[(label, "(adapter)")] = "skipped"
        for check in adapter.get("checks") or []:
            out[(label, check["check"])] = check["status"]
    return out


def conformance_changes(old: dict | None, new: dict | None) -> list[StatusChange]:
    a, b = _checks(old), _checks(new)
    return [StatusChange(adapter, check, a.get((adapter, check), "absent"), b.get((adapter, check), "absent"))
            for adapter, check in [*a, *(k for k in b if k not in a)]
            if a.get((adapter, check)) != b.get((adapter, check))]
