"""Part files and the run manifest: which ``bench-<part>.json`` belong to this run.

Every run writes into a folder of its own, ``raw/<run-id>/`` beside the results, so two
runs at once never touch each other's files. ``bench-run.json`` there names the run id and,
per part, the file written in that run and its status; ``finalize`` reads only those files:
others are reported as ignored, and a listed file that cannot be read stops finalize with a
one-line error naming it. The raw files stay as the evidence behind bench.csv's rows.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path

from harness.errors import CorruptResults, HarnessError
from harness.machine import machine_id
from harness.results import atomic_write_json, read_json

MANIFEST = "bench-run.json"
PART_RE = re.compile(r"^[A-Za-z0-9._-]+$")


RAW_DIR = "raw"


ADAPTERS_ENV = "EMBEDDING_HARNESS_ADAPTERS"
PLUGINS_PART = "plugins"


def plan(requested: str | None = None) -> list[tuple[str, dict[str, str]]]:
    """(part label, extra environment) per benchmark process, honouring a user's selection
    (EMBEDDING_HARNESS_ADAPTERS; default: every registered adapter but the opt-in ones). One
    process per registered framework, with the environment it needs (Keras: its backend):
    timings must not share a process, since thread pools of one framework linger and slow the
    next one down. Raises HarnessError when the selection names nothing."""
    from harness.registry import default_builtins, framework_of, match_spec

    from_user = [s.strip() for s in (requested or "").split(",") if s.strip()]
    groups: dict[str, list[str]] = {}
    envs: dict[str, dict[str, str]] = {}
    for spec in from_user or default_builtins():
        if ":" in spec:
            groups.setdefault(PLUGINS_PART, []).append(spec)
            continue
        builtins, plugins = match_spec(spec)  # a glob may span frameworks: one part each
        for adapter_id in builtins:
            framework = framework_of(adapter_id)
            groups.setdefault(framework.name, []).append(adapter_id)
            envs[framework.name] = dict(framework.env)
        if plugins:
            groups.setdefault(PLUGINS_PART, []).extend(plugins)
    if not groups:
        raise HarnessError(f"{ADAPTERS_ENV}={requested!r} selects no adapter")
    return [(label, {ADAPTERS_ENV: ",".join(dict.fromkeys(specs)), **envs.get(label, {})})
            for label, specs in groups.items()]


def new_run_id() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}"


def run_dir(out: Path, run_id: str) -> Path:
    """``<out>/raw/<run-id>/``: this run's part files and manifest."""
    if not PART_RE.match(run_id) or run_id.startswith("."):
        raise HarnessError(f"run id {run_id!r}: use letters, digits, '.', '_' and '-' only")
    return Path(out) / RAW_DIR / run_id


def part_file(out: Path, part: str) -> Path:
    if not PART_RE.match(part):
        raise HarnessError(f"part label {part!r}: use letters, digits, '.', '_' and '-' only")
    return Path(out) / f"bench-{part}.json"


def check_machine(out: Path) -> None:
    """Refuse to write into a folder whose existing results come from another machine."""
    for name in (MANIFEST, "bench_meta.json"):
        path = Path(out) / name
        if not path.exists():
            continue
        try:
            theirs = read_json(path).get("machine_id")
        except (CorruptResults, AttributeError):
            continue
        mine = machine_id()
        if theirs and theirs != mine:
            raise HarnessError(f"{path} belongs to machine {theirs!r}, this is {mine!r}: "
                               f"write to results/{mine}/ (or set EMBEDDING_HARNESS_MACHINE_ID)")


def load_manifest(out: Path) -> dict | None:
    path = Path(out) / MANIFEST
    if not path.exists():
        return None
    data = read_json(path)
    if not isinstance(data, dict) or "run_id" not in data or not isinstance(data.get("parts"), dict):
        raise CorruptResults(f"{path}: not a bench run manifest; delete it and re-run the bench")
    return data


def record_part(out: Path, run_id: str, part: str, profile: str, status: str, message: str = "") -> None:
    """Add (or replace) a part in the manifest; a different run id starts a new manifest."""
    try:
        manifest = load_manifest(out)
    except CorruptResults:
        manifest = None  # the new run replaces an unreadable manifest
    if manifest is None or manifest.get("run_id") != run_id:
        manifest = {"run_id": run_id, "machine_id": machine_id(), "parts": {}}
    manifest["parts"][part] = {"file": part_file(out, part).name, "profile": profile,
                               "status": status, "message": message,
                               "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    atomic_write_json(Path(out) / MANIFEST, manifest)


def load_run(out: Path, run_id: str | None = None) -> tuple[dict, dict[str, dict], list[str]]:
    """(manifest, {part: part document}, ignored file names) for the run recorded in ``out``."""
    out = Path(out)
    manifest = load_manifest(out)
    if manifest is None:
        raise HarnessError(f"{out / MANIFEST}: no benchmark run recorded here; run "
                           f"'python -m harness.bench all --out {out}' first")
    if run_id and manifest["run_id"] != run_id:
        raise HarnessError(f"{out / MANIFEST} records run {manifest['run_id']!r}, not {run_id!r}: "
                           f"did every 'run' of this session fail?")
    docs: dict[str, dict] = {}
    for part, entry in manifest["parts"].items():
        path = out / entry["file"]
        if entry.get("status") == "failed" and not path.exists():
            continue  # it died before writing a record; the manifest says why
        doc = read_json(path)
        record = doc.get("embedding_harness") if isinstance(doc, dict) else None
        if not isinstance(record, dict) or not isinstance(record.get("cases"), list):
            raise CorruptResults(f"{path}: has no embedding_harness part record; re-run this part")
        if record.get("run_id") != manifest["run_id"]:
            raise CorruptResults(f"{path}: written by run {record.get('run_id')!r}, the manifest "
                                 f"says {manifest['run_id']!r}; re-run the bench")
        docs[part] = doc
    listed = {e["file"] for e in manifest["parts"].values()}
    ignored = sorted(p.name for p in out.glob("bench-*.json") if p.name not in listed and p.name != MANIFEST)
    return manifest, docs, ignored
