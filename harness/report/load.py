"""Reading ``results/<machine-id>/`` folders back, with validation.

Every reader either returns clean data or raises ``CorruptResults`` with a one-line message
that names the file. ``load_root`` turns those into ``problems`` and goes on with the rest,
so one bad file never costs the whole report. Only the standard library is used: results must
be readable where nothing but the harness is installed (the views in harness/views use pandas).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import CorruptResults
from harness.results import current_status, read_json
from harness.schema import (
    ADAPTER_REQUIRED,
    BENCH_REQUIRED,
    BENCH_STATUS_RANK,
    CHECK_REQUIRED,
    CHECK_STATUSES,
    CONFORMANCE_REQUIRED,
    CONFORMANCE_SCHEMA,
    bench_csv_header,
    bench_key,
    measured_wins,
    parse_bench_csv,
)

CONFORMANCE_FILE = "conformance.json"
BENCH_FILE = "bench.csv"
BENCH_META_FILE = "bench_meta.json"
BENCH_MD_FILE = "BENCH.md"
PLOTS_DIR = "plots"
RESULT_FILES = (CONFORMANCE_FILE, BENCH_FILE, BENCH_META_FILE)

# Folders under results/ that hold report or test outputs, never a machine's results.
RESERVED_DIRS = frozenset({"artifacts", "screenshots", "report-assets"})

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"  # the IEND chunk with its fixed CRC: a truncated PNG lacks it


@dataclass
class MachineResults:
    """What one ``results/<machine-id>/`` folder holds that could be read."""

    machine_id: str
    path: Path
    conformance: dict | None = None
    bench_rows: list[dict] | None = None
    bench_meta: dict | None = None
    plots: list[Path] = field(default_factory=list)
    has_bench_md: bool = False
    bench_subdir: str = ""  # "" for the full profile, "profile-<name>/" for another one

    @property
    def has_results(self) -> bool:
        return self.conformance is not None or self.bench_rows is not None

    def declared_machine_id(self) -> str | None:
        """The machine id recorded inside the files (survives renaming or copying the folder)."""
        for meta in (self.conformance_machine(), self.bench_machine()):
            mid = meta.get("machine_id")
            if isinstance(mid, str) and mid:
                return mid
        return None

    def conformance_machine(self) -> dict:
        machine = (self.conformance or {}).get("machine")
        return machine if isinstance(machine, dict) else {}

    def bench_machine(self) -> dict:
        """Machine metadata of the bench run, whether nested under ``machine`` or flat."""
        meta = self.bench_meta or {}
        nested = meta.get("machine")
        return nested if isinstance(nested, dict) else meta


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _corrupt(path: Path, what: str, rerun: str) -> CorruptResults:
    return CorruptResults(_one_line(f"{path}: {what}; re-run {rerun} or delete the file"))


TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
              type(None): "null"}


def _require(path: Path, where: str, obj: dict, required: dict, rerun: str) -> None:
    """Every key the report reads is there with its type (a renamed key is refused, not skipped)."""
    for key, kind in required.items():
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if key not in obj:
            raise _corrupt(path, f"{where}has no key {key!r} (renamed or dropped by the writer?)", rerun)
        value = obj[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            wanted = " or ".join(dict.fromkeys(TYPE_NAMES[k] for k in kinds))
            raise _corrupt(path, f"{where}{key!r} is {type(value).__name__}, not {wanted}", rerun)


def load_conformance(path: Path) -> dict:
    """A validated ``conformance.json`` (schema embedding-harness/conformance/1)."""
    data = read_json(path)
    rerun = "nox -s conformance"
    if not isinstance(data, dict):
        raise _corrupt(path, f"expected a JSON object, found {type(data).__name__}", rerun)
    schema = data.get("schema")
    if schema != CONFORMANCE_SCHEMA:
        raise _corrupt(path, f"unsupported schema {schema!r} (expected {CONFORMANCE_SCHEMA!r})", rerun)
    adapters = data.get("adapters")
    if not isinstance(adapters, list):
        raise _corrupt(path, "'adapters' is missing or not a list", rerun)
    for i, adapter in enumerate(adapters):
        where = f"adapters[{i}]"
        if not isinstance(adapter, dict) or not isinstance(adapter.get("id"), str):
            raise _corrupt(path, f"{where} has no string 'id'", rerun)
        where = f"adapter {adapter['id']!r}"
        if "checks" in adapter and not isinstance(adapter["checks"], list):
            raise _corrupt(path, f"{where}: 'checks' is not a list", rerun)
        for key in ("declared", "observed", "versions", "counts"):
            if adapter.get(key) is not None and not isinstance(adapter[key], dict):
                raise _corrupt(path, f"{where}: {key!r} is not an object", rerun)
        _require(path, f"{where}: ", adapter, ADAPTER_REQUIRED, rerun)
        for j, check in enumerate(adapter["checks"]):
            if not isinstance(check, dict) or not isinstance(check.get("check"), str):
                raise _corrupt(path, f"{where}: checks[{j}] has no string 'check'", rerun)
            if check.get("status") not in CHECK_STATUSES:
                raise _corrupt(path, f"{where}: check {check['check']!r} has status "
                                     f"{check.get('status')!r}, not one of {', '.join(CHECK_STATUSES)}",
                               rerun)
            _require(path, f"{where}: check {check['check']!r}: ", check, CHECK_REQUIRED, rerun)
            check["status"] = current_status(check["status"], adapter)
    if data.get("machine") is not None and not isinstance(data["machine"], dict):
        raise _corrupt(path, "'machine' is not an object", rerun)
    _require(path, "", data, CONFORMANCE_REQUIRED, rerun)
    return data


def load_bench_csv(path: Path) -> list[dict]:
    """Rows of a validated ``bench.csv`` (harness/schema.py's types, None for empty cells).

    A row with too few or too many cells (a truncated write), an unknown status or an ``ok``
    row without a positive median rejects the whole file: half a table is not trustworthy."""
    rerun = "nox -s bench"
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise CorruptResults(f"{path}: missing; re-run {rerun}") from None
    except UnicodeDecodeError as exc:
        raise _corrupt(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})", rerun) from None
    if not text.strip():
        raise _corrupt(path, "empty file", rerun)
    header = bench_csv_header(text)
    missing = [c for c in BENCH_REQUIRED if c not in header]
    if missing:
        raise _corrupt(path, f"missing column(s) {', '.join(missing)}", rerun)
    try:
        _, rows = parse_bench_csv(text)
    except ValueError as exc:
        raise _corrupt(path, str(exc), rerun) from None
    return _dedupe(rows)


def _dedupe(rows: list[dict]) -> list[dict]:
    """One row per identity: the part that measured wins, and the later row among equals."""
    best = measured_wins(rows, bench_key, lambda r: BENCH_STATUS_RANK[r["status"]])
    return list({bench_key(r): r for r in best}.values())


def load_bench_meta(path: Path) -> dict:
    data = read_json(path)
    if not isinstance(data, dict):
        raise _corrupt(path, f"expected a JSON object, found {type(data).__name__}", "nox -s bench")
    return data


def check_png(path: Path) -> None:
    data = Path(path).read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise _corrupt(path, "not a PNG image", "nox -s bench")
    if not data.rstrip(b"\0").endswith(PNG_END):
        raise _corrupt(path, "truncated PNG (no end chunk)", "nox -s bench")


def is_machine_dir(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith((".", "_")) and path.name not in RESERVED_DIRS


# Benchmark profiles other than full live in profile-<name>/ below the machine folder; without
# a full run, the report shows the most thorough one there is.
PROFILE_PREFERENCE = ("profile-gpu", "profile-quick", "profile-tiny", "profile-smoke")


def bench_folder(path: Path) -> Path:
    """Where the machine's benchmark table to report lives: the full profile's, else another's."""
    path = Path(path)
    if (path / BENCH_FILE).exists():
        return path
    others = sorted(p for p in path.glob("profile-*") if (p / BENCH_FILE).exists())
    others.sort(key=lambda p: PROFILE_PREFERENCE.index(p.name) if p.name in PROFILE_PREFERENCE
                else len(PROFILE_PREFERENCE))
    return others[0] if others else path


def holds_machine_results(path: Path) -> bool:
    """A machine's own folder: result files at its top, or a benchmark profile's in profile-<name>/
    below it (where every profile but the full one writes)."""
    path = Path(path)
    return any((path / name).exists() for name in RESULT_FILES) or bench_folder(path) != path


def load_machine(path: Path, problems: list[str]) -> MachineResults:
    """Everything readable in one machine folder; each unreadable file adds one problem line."""
    path = Path(path)
    machine = MachineResults(machine_id=path.name, path=path)
    bench = bench_folder(path)
    machine.bench_subdir = "" if bench == path else f"{bench.name}/"
    readers = ((CONFORMANCE_FILE, "conformance", load_conformance, path),
               (BENCH_FILE, "bench_rows", load_bench_csv, bench),
               (BENCH_META_FILE, "bench_meta", load_bench_meta, bench))
    for name, attr, reader, folder in readers:
        file = folder / name
        if not file.exists():
            continue
        try:
            setattr(machine, attr, reader(file))
        except CorruptResults as exc:
            problems.append(_one_line(str(exc)))
        except OSError as exc:
            problems.append(_one_line(f"{file}: unreadable ({exc.strerror or exc})"))
    if (bench / BENCH_FILE).exists() and not (bench / BENCH_META_FILE).exists():
        problems.append(f"{bench / BENCH_META_FILE}: missing beside {BENCH_FILE} (partial bench run); "
                        "re-run nox -s bench")
    for png in sorted((bench / PLOTS_DIR).glob("*.png")):
        try:
            check_png(png)
            machine.plots.append(png)
        except CorruptResults as exc:
            problems.append(_one_line(str(exc)))
        except OSError as exc:
            problems.append(_one_line(f"{png}: unreadable ({exc.strerror or exc})"))
    machine.has_bench_md = (bench / BENCH_MD_FILE).is_file()
    if not any((folder / name).exists() for name in RESULT_FILES for folder in (path, bench)):
        problems.append(f"{path}: holds no {', '.join(RESULT_FILES)} (an interrupted run?); "
                        "re-run nox -s conformance or nox -s bench, or delete the folder")
    return machine


def load_root(root: Path) -> tuple[list[MachineResults], list[str]]:
    """Every machine folder under ``root`` with results, sorted by id, and the problem lines."""
    root = Path(root)
    problems: list[str] = []
    machines = []
    for path in sorted(p for p in root.iterdir() if is_machine_dir(p)):
        machine = load_machine(path, problems)
        if machine.has_results:
            machines.append(machine)
    return machines, problems
