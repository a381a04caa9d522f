"""The mutation score: counted from mutmut's exit codes, equivalence listings honoured only
while the mutated line still matches."""

import json

import pytest

from harness import mutation
from harness.errors import HarnessError
from harness.views import selftests

DIFFS = {
    "harness.oracle.x_forward__mutmut_1": "--- a\n+++ b\n-    return w[ids]\n+    return w[ids + 1]",
    "harness.oracle.x_forward__mutmut_2": "--- a\n+++ b\n-    x = 1\n+    x = 2",
    "harness.tolerance.x_ulp__mutmut_1": "--- a\n+++ b\n-    if a < b:\n+    if a <= b:",
}


def _diff(module, name):
    return DIFFS[name]


META = {
    "harness/oracle.py": {"harness.oracle.x_forward__mutmut_1": 0, "harness.oracle.x_forward__mutmut_2": 5,
                          "harness.oracle.x_forward__mutmut_3": 1, "harness.oracle.x_forward__mutmut_4": 36},
    "harness/tolerance.py": {"harness.tolerance.x_ulp__mutmut_1": 0, "harness.tolerance.x_ulp__mutmut_2": 1},
}


def test_exit_codes_map_to_outcomes():
    assert [mutation.outcome(c) for c in (1, 3, 36, -11, 0, 5, 33, None, 2)] == [
        "killed", "killed", "killed", "killed", "survived", "untested", "untested", "not checked", "not checked"]


def test_score_counts_killed_over_killed_survived_and_untested():
    result = mutation.score(META, {}, _diff)
    oracle = result["modules"]["harness/oracle.py"]
    assert oracle["counts"] == {"killed": 2, "survived": 1, "untested": 1, "equivalent": 0, "not checked": 0}
    assert oracle["score"] == 0.5
    assert result["modules"]["harness/tolerance.py"]["score"] == 0.5
    assert result["total"]["score"] == 3 / 6 and result["not_measured"] == {}
    assert [s["name"] for s in result["survivors"]] == ["harness.oracle.x_forward__mutmut_1",
                                                        "harness.oracle.x_forward__mutmut_2",
                                                        "harness.tolerance.x_ulp__mutmut_1"]


def test_an_equivalence_listing_counts_only_while_its_line_matches():
    listed = {"harness.tolerance.x_ulp__mutmut_1": {"reason": "a == b gives the same bound", "line": "if a <= b:"},
              "harness.oracle.x_forward__mutmut_1": {"reason": "wrong", "line": "return w[ids - 1]"}}
    result = mutation.score(META, listed, _diff)
    tol = result["modules"]["harness/tolerance.py"]
    assert tol["counts"]["equivalent"] == 1 and tol["counts"]["survived"] == 0 and tol["score"] == 1.0
    assert result["equivalent"] == [{"name": "harness.tolerance.x_ulp__mutmut_1",
                                     "reason": "a == b gives the same bound"}]
    assert result["stale"] == [{"name": "harness.oracle.x_forward__mutmut_1", "listed_line": "return w[ids - 1]",
                                "mutated_line": "return w[ids + 1]"}]
    assert "Stale equivalence listings" in selftests.mutation_section({**result, "mutmut": "3.8", "created": "now"})


def test_listings_need_a_reason_and_a_line(tmp_path):
    bad = tmp_path / "eq.toml"
    bad.write_text('["harness.x__mutmut_1"]\nreason = "same"\n')
    with pytest.raises(HarnessError, match="needs a 'reason' and the mutated 'line'"):
        mutation.load_equivalent(bad)
    bad.write_text("[not toml")
    with pytest.raises(HarnessError, match="not valid TOML"):
        mutation.load_equivalent(bad)


def test_meta_files_are_read_per_module_and_their_absence_is_one_clear_error(tmp_path):
    with pytest.raises(HarnessError, match="run 'mutmut run'"):
        mutation.read_meta(tmp_path)
    (tmp_path / "harness" / "bench").mkdir(parents=True)
    (tmp_path / "harness" / "bench" / "metrics.py.meta").write_text(
        json.dumps({"exit_code_by_key": {"harness.bench.metrics.x_gbps__mutmut_1": 1}}))
    assert mutation.read_meta(tmp_path) == {"harness/bench/metrics.py": {"harness.bench.metrics.x_gbps__mutmut_1": 1}}


def test_the_committed_score_is_what_its_counts_say_and_what_the_readme_shows():
    """results/mutation.json is written by nox -s mutmut, which also writes the README's section."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    section = (root / "README.md").read_text().split("<!-- mutation:start -->\n")[1].split("<!-- mutation:end -->")[0]
    if not (root / "results" / "mutation.json").exists():  # no run committed yet: the README claims none
        assert section.strip() == ""
        return
    committed = json.loads((root / "results" / "mutation.json").read_text())
    for figures in [committed["total"], *committed["modules"].values()]:
        c = figures["counts"]
        assert figures["score"] == c["killed"] / (c["killed"] + c["survived"] + c["untested"])
    assert not committed["stale"]
    # A module edited since it was measured is named as such (python -m harness.mutation --render ...).
    assert section.strip() == selftests.mutation_section(committed, mutation.changed_sources(committed)).strip()


def test_a_module_edited_since_measured_is_named_changed(tmp_path, monkeypatch):
    (tmp_path / "m.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    same = {"modules": {"m.py": {"source_sha256": mutation._sha256(tmp_path / "m.py")}}}
    edited = {"modules": {"m.py": {"source_sha256": "0" * 64}}}
    assert mutation.changed_sources(same) == [] and mutation.changed_sources(edited) == ["m.py"]


def test_a_module_not_checked_completely_is_left_out_of_the_score_and_named():
    partly = {"harness.checks.x_run__mutmut_1": 1, "harness.checks.x_run__mutmut_2": None}
    left_out = {"harness.strategies.x_ids__mutmut_1": None}
    result = mutation.score({**META, "harness/checks.py": partly, "harness/strategies.py": left_out}, {}, _diff)
    assert result["not_measured"] == {"harness/checks.py": {"mutants": 2, "checked": 1},
                                      "harness/strategies.py": {"mutants": 1, "checked": 0}}
    assert set(result["modules"]) == {"harness/oracle.py", "harness/tolerance.py"}
    assert result["total"]["score"] == 3 / 6  # as without them
    text = selftests.mutation_section({**result, "mutmut": "3.8", "created": "now"})
    assert ("Not measured completely by this run, so not in the score: `harness/checks.py` (1 of 2 mutants "
            "checked), `harness/strategies.py` (0 of 1 mutants checked).") in text
    assert "Not measured" not in selftests.mutation_section({**mutation.score(META, {}, _diff), "mutmut": "3.8",
                                                  "created": "now"})


def _previous():
    """An earlier result in which harness/checks.py was measured (with one survivor, one equivalent)."""
    checks = {"counts": {"killed": 8, "survived": 1, "untested": 0, "equivalent": 1, "not checked": 0},
              "score": 8 / 9, "source_sha256": "abc", "measured": "2026-01-01T00:00:00+00:00"}
    return {"created": "2026-01-01T00:00:00+00:00", "modules": {"harness/checks.py": checks},
            "survivors": [{"name": "harness.checks.x_run__mutmut_7", "module": "harness/checks.py"},
                          {"name": "harness.oracle.x_old__mutmut_1", "module": "harness/oracle.py"}],
            "equivalent": [{"name": "harness.checks.x_run__mutmut_9", "reason": "r"},
                           {"name": "harness.oracle.x_old__mutmut_2", "reason": "r"}]}


def test_an_unmeasured_module_keeps_its_earlier_figures_while_its_source_is_unchanged():
    result = mutation.score({**META, "harness/checks.py": {"harness.checks.x_run__mutmut_1": None}}, {}, _diff)
    result["created"] = "now"
    mutation.carry_over(result, _previous(), lambda module, entry: ("abc", entry["source_sha256"]))
    assert result["not_measured"] == {}
    assert result["modules"]["harness/checks.py"]["counts"]["killed"] == 8
    assert result["modules"]["harness/checks.py"]["measured"] == "2026-01-01T00:00:00+00:00"
    assert result["total"]["score"] == (3 + 8) / (6 + 9)
    assert [s["name"] for s in result["survivors"]][-1] == "harness.checks.x_run__mutmut_7"
    assert "harness.oracle.x_old__mutmut_1" not in [s["name"] for s in result["survivors"]]  # measured anew
    assert [e["name"] for e in result["equivalent"]] == ["harness.checks.x_run__mutmut_9"]
    text = selftests.mutation_section({**result, "mutmut": "3.8"})
    assert ("Carried over from an earlier run when this result was written (the source was then the one measured): "
            "`harness/checks.py` "
            "(measured 2026-01-01T00:00:00+00:00).") in text


@pytest.mark.parametrize("hashes", [("changed", "abc"), (None, "abc"), ("abc", None)])
def test_a_changed_or_unknown_source_is_not_carried_over(hashes):
    result = mutation.score({**META, "harness/checks.py": {"harness.checks.x_run__mutmut_1": None}}, {}, _diff)
    mutation.carry_over(result, _previous(), lambda module, entry: hashes)
    assert result["not_measured"] == {"harness/checks.py": {"mutants": 1, "checked": 0}}
    assert "harness/checks.py" not in result["modules"] and result["total"]["score"] == 3 / 6
