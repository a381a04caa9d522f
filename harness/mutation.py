"""The mutation score of the harness itself: how many small edits to the modules that decide
verdicts and figures the unit tests notice.

    nox -s mutmut          # mutmut run, then: python -m harness.mutation --out results/mutation.json

mutmut (configured in pyproject.toml, ``[tool.mutmut]``) writes one ``mutants/<module>.py.meta``
per mutated module with the exit code of the tests for every mutant. A mutant is *killed* when
the tests failed (or timed out, or crashed) with it in place, *survived* when they passed, and
*untested* when no test reached its function. Survivors that cannot change behaviour are listed
in ``tests/mutation_equivalent.toml`` with the reason and the mutated line, and leave the
denominator; a listing whose line no longer matches the mutant is stale and counts for nothing.
Exit status 1 when the run is incomplete, the score is under the goal or a listing is stale.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import tomllib

from harness.errors import HarnessError

GOAL = 0.90
EQUIVALENT_FILE = Path("tests/mutation_equivalent.toml")
# mutmut's exit codes (mutmut/stats.py): the tests' exit status, or its own markers.
KILLED_CODES = {1, 3, 24, -24, 152, 255, 36, 37, -11, -9}
SURVIVED_CODES = {0}
UNTESTED_CODES = {5, 33}


def outcome(exit_code: int | None) -> str:
    if exit_code in KILLED_CODES:
        return "killed"
    if exit_code in SURVIVED_CODES:
        return "survived"
    if exit_code in UNTESTED_CODES:
        return "untested"
    return "not checked"


def read_meta(mutants_dir: Path) -> dict[str, dict[str, int | None]]:
    """module path (harness/x.py) -> {mutant name: exit code}, from mutmut's .meta files."""
    metas = sorted(mutants_dir.glob("**/*.py.meta"))
    if not metas:
        raise HarnessError(f"no mutmut results under {mutants_dir}/; run 'mutmut run' (nox -s mutmut) first")
    out = {}
    for meta in metas:
        module = meta.relative_to(mutants_dir).as_posix().removesuffix(".meta")
        out[module] = json.loads(meta.read_text())["exit_code_by_key"]
    return out


def mutated_line(diff: str) -> str:
    """The first added line of a mutant's diff, stripped: what an equivalence listing names."""
    return next((line[1:].strip() for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")),
                "")


def load_equivalent(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"{path}: not valid TOML ({exc}); fix the file") from None
    for name, entry in data.items():
        if not isinstance(entry, dict) or not entry.get("reason") or not entry.get("line"):
            raise HarnessError(f"{path}: [{name!r}] needs a 'reason' and the mutated 'line'")
    return data


def score(meta: dict[str, dict], equivalent: dict[str, dict], diff_of) -> dict:
    """Counts per module and overall; ``diff_of(module, name)`` gives a mutant's diff."""
    modules, survivors, stale, honoured, not_measured = {}, [], [], [], {}
    for module, codes in sorted(meta.items()):
        counts = Counter(outcome(code) for code in codes.values())
        if counts["not checked"]:  # left out of a narrowed run (nox -s mutmut -- 'harness.oracle*'), or stopped
            not_measured[module] = {"mutants": len(codes), "checked": len(codes) - counts["not checked"]}
            continue
        for name, code in sorted(codes.items()):
            if outcome(code) not in ("survived", "untested"):
                continue
            diff = diff_of(module, name)
            listed = equivalent.get(name)
            if listed and listed["line"].strip() == mutated_line(diff):
                counts["equivalent"] += 1
                counts[outcome(code)] -= 1
                honoured.append({"name": name, "reason": listed["reason"]})
                continue
            if listed:
                stale.append({"name": name, "listed_line": listed["line"], "mutated_line": mutated_line(diff)})
            survivors.append({"name": name, "module": module, "outcome": outcome(code), "diff": diff})
        modules[module] = _rate(counts)
    total = _rate(sum((Counter(m["counts"]) for m in modules.values()), Counter()))
    return {"modules": modules, "total": total, "survivors": survivors, "equivalent": honoured, "stale": stale,
            "not_measured": not_measured}


def carry_over(result: dict, previous: dict, source_hash) -> None:
    """Fill in modules this run did not measure completely from ``previous`` (an earlier
    result), each only while its source is the one measured then: ``source_hash(module, entry)``
    gives (hash now, hash when measured). A full run takes an hour on two cores; a run narrowed
    to the changed modules keeps the others' measured results instead of losing them."""
    for module in list(result["not_measured"]):
        entry = previous.get("modules", {}).get(module)
        if entry is None:
            continue
        now, then = source_hash(module, entry)
        if now is None or now != then:
            continue
        result["modules"][module] = {**entry, "source_sha256": now,
                                     "measured": entry.get("measured") or previous.get("created")}
        del result["not_measured"][module]
        result["survivors"] += [s for s in previous.get("survivors", []) if s["module"] == module]
        dotted = module.removesuffix(".py").replace("/", ".") + "."
        result["equivalent"] += [e for e in previous.get("equivalent", []) if e["name"].startswith(dotted)]
    result["modules"] = dict(sorted(result["modules"].items()))
    result["total"] = _rate(sum((Counter(m["counts"]) for m in result["modules"].values()), Counter()))


def _rate(counts: Counter) -> dict:
    counted = counts["killed"] + counts["survived"] + counts["untested"]
    return {"counts": {k: counts[k] for k in ("killed", "survived", "untested", "equivalent", "not checked")},
            "score": counts["killed"] / counted if counted else None}


def changed_sources(result: dict) -> list[str]:
    """Modules whose source is no longer the one their figures were measured on."""
    return [module for module, entry in result["modules"].items()
            if entry.get("source_sha256") and _sha256(Path(module)) != entry["source_sha256"]]


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def _git(*args) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, timeout=60)


def _last_commit_of(path: Path) -> str:
    """The commit that last wrote ``path`` ('' outside git or for an uncommitted file)."""
    return _git("log", "-1", "--format=%H", "--", str(path)).stdout.decode().strip()


def _committed_sha256(commit: str, module: str) -> str | None:
    """For a result written before modules carried their hash: the module as it was in ``commit``
    (the one that last wrote that result)."""
    shown = _git("show", f"{commit}:{module}") if commit else None
    return hashlib.sha256(shown.stdout).hexdigest() if shown is not None and shown.returncode == 0 else None


def _mutmut_diff(module: str, name: str) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    return get_diff_for_mutant(name, path=Path(module))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"), help="mutmut's working folder")
    parser.add_argument("--out", type=Path, default=None, help="write the score and the survivors here (JSON)")
    parser.add_argument("--readme", type=Path, default=None, help="refresh this README's mutation section")
    parser.add_argument("--render", type=Path, default=None,
                        help="re-render --readme from this committed result (e.g. results/mutation.json) without "
                             "mutants, naming the modules whose source changed since")
    parser.add_argument("--keep", type=Path, default=None,
                        help="an earlier result (e.g. results/mutation.json): modules this run did not measure "
                             "keep its figures while their source is unchanged")
    args = parser.parse_args(argv)
    from harness.views.selftests import mutation_md, mutation_section  # the views import this module's facts

    if args.render:
        from harness.views.readme import replace_section

        committed = json.loads(args.render.read_text())
        text = mutation_section(committed, changed_sources(committed))
        if args.readme:
            replace_section(args.readme, "mutation", text)
        print(text)
        return 0
    try:
        from importlib.metadata import version

        result = score(read_meta(args.mutants), load_equivalent(EQUIVALENT_FILE), _mutmut_diff)
        result.update(created=datetime.now(timezone.utc).isoformat(timespec="seconds"), mutmut=version("mutmut"),
                      goal=GOAL)
        for module, entry in result["modules"].items():
            entry.update(measured=result["created"], source_sha256=_sha256(Path(module)))
        if args.keep and args.keep.exists():
            commit = _last_commit_of(args.keep)
            carry_over(result, json.loads(args.keep.read_text()), lambda module, entry: (
                _sha256(Path(module)), entry.get("source_sha256") or _committed_sha256(commit, module)))
        text = mutation_section(result)
        if args.out:
            from harness.results import atomic_write_json, atomic_write_text

            atomic_write_json(args.out, result)
            atomic_write_text(args.out.with_suffix(".md"), mutation_md(result))
        if args.readme:
            from harness.views.readme import replace_section

            replace_section(args.readme, "mutation", text)
    except HarnessError as exc:
        print(f"mutation: {exc}", file=sys.stderr)
        return 2
    print(text)
    complete = not result["not_measured"]
    if not complete or result["stale"] or result["total"]["score"] is None or result["total"]["score"] < GOAL:
        print(f"mutation: score {result['total']['score']} (goal {GOAL:.0%}), complete run: {complete}, stale "
              f"listings {[s['name'] for s in result['stale']]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
