"""The README's sections on how well the harness tests itself: the kill rate of the broken
adapters (harness/killrate.py) and the mutation score of its own modules (harness/mutation.py),
and mutation.md with every surviving mutant's diff."""

from __future__ import annotations

from harness.killrate import unproven
from harness.mutation import EQUIVALENT_FILE, GOAL
from harness.views import mdtext, tables


def killrate_section(result: dict) -> str:
    """Which broken adapter each check caught, and the checks no broken adapter fails."""
    rows = [[m["id"], m["bug"],
             ", ".join(m["killed_by"][:4]) + (" ..." if len(m["killed_by"]) > 4 else "") or "**SURVIVED**"]
            for m in result["mutants"]]
    missing = unproven(result)
    control = result["control"]
    return "\n".join([
        f"Kill rate: **{result['killed']}/{result['adapters']}** broken adapters caught "
        f"({result['rate']:.0%}), Hypothesis profile `{result['profile']}`; the faithful controls "
        f"({control['id']}) " + ("pass every check of their family." if not control["failed"]
                                 else f"FAILS {', '.join(control['failed'])}."),
        "", tables.markdown(tables.frame(rows, ["broken adapter", "the bug it models", "caught by"])), "",
        f"Every one of the {len(result['failed_by'])} checks fails on at least one broken adapter."
        if not missing else f"**Never shown to fail** (no broken adapter fails them): {', '.join(missing)}."])


def mutation_section(result: dict, changed: list[str] | None = None) -> str:
    """The README's section; ``changed``: modules edited since they were measured (their
    figures describe the older source until ``nox -s mutmut`` measures them again)."""
    t = result["total"]
    counted = t["counts"]["killed"] + t["counts"]["survived"] + t["counts"]["untested"]
    rows = [[mdtext.code(module), *(m["counts"][k] for k in ("killed", "survived", "untested", "equivalent")),
             f"{m['score']:.1%}"] if m["score"] is not None else [mdtext.code(module), 0, 0, 0, 0, "-"]
            for module, m in result["modules"].items()]
    lines = [f"Mutation score of the modules that decide verdicts and figures: **{t['score']:.1%}** "
             f"({t['counts']['killed']} of {counted} mutants killed; {t['counts']['equivalent']} equivalent ones "
             f"listed with their reason in `{EQUIVALENT_FILE}`), mutmut {result['mutmut']}, {result['created']}; "
             f"goal {GOAL:.0%}.", "",
             tables.markdown(tables.frame(rows, ["module", "killed", "survived", "no test reaches it", "equivalent",
                                                 "score"]))]
    carried = {m: e["measured"] for m, e in result["modules"].items()
               if e.get("measured") and e["measured"] != result.get("created")}
    if carried:
        lines += ["", "Carried over from an earlier run when this result was written (the source was then the "
                  "one measured): " + ", ".join(f"`{m}` (measured {when})" for m, when in carried.items()) + "."]
    if result["not_measured"]:
        lines += ["", "Not measured completely by this run, so not in the score: " + ", ".join(
            f"`{m}` ({n['checked']} of {n['mutants']} mutants checked)" for m, n in result["not_measured"].items())
            + "."]
    if result["stale"]:
        lines += ["", "Stale equivalence listings (the mutated line changed): "
                  + ", ".join(s["name"] for s in result["stale"])]
    if changed:
        lines += ["", "**Changed since measured** (these figures describe the older source; `nox -s mutmut` "
                  "measures them again): " + ", ".join(f"`{m}`" for m in changed) + "."]
    return "\n".join(lines)


def mutation_md(result: dict) -> str:
    """results/mutation.md: the README's section, then every surviving mutant's diff."""
    return ("# Mutation testing\n\n" + mutation_section(result) + "\n\n"
            + "\n\n".join(f"## {s['name']} ({s['outcome']})\n\n```diff\n{s['diff']}\n```"
                          for s in result["survivors"]) + "\n")
