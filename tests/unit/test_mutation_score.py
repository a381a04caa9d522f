"""The mutation score: counted from mutmut's exit codes, equivalence listings honoured only
while the mutated line still matches."""

import json

import pytest

from harness import mutation
from harness.errors import HarnessError

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
    "harness/tolerance.py": {"harness.tolerance.x_ulp__mutmut_1": 0, "harness.tolerance.x_ulp__mutmut_2": 1,
                             "harness.tolerance.x_ulp__mutmut_3": None},
}


def test_exit_codes_map_to_outcomes():
    assert [mutation.outcome(c) for c in (1, 3, 36, -11, 0, 5, 33, None, 2)] == [
        "killed", "killed", "killed", "killed", "survived", "untested", "untested", "not checked", "not checked"]


def test_score_counts_killed_over_killed_survived_and_untested():
    result = mutation.score(META, {}, _diff)
    oracle = result["modules"]["harness/oracle.py"]
    assert oracle["counts"] == {"killed": 2, "survived": 1, "untested": 1, "equivalent": 0, "not checked": 0}
    assert oracle["score"] == 0.5
    tol = result["modules"]["harness/tolerance.py"]
    assert tol["counts"]["not checked"] == 1 and tol["score"] == 0.5  # 1 killed of 2 counted
    assert result["total"]["score"] == 3 / 6
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
    assert "Stale equivalence listings" in mutation.render({**result, "mutmut": "3.8", "created": "now"})


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


def test_the_committed_score_meets_the_goal():
    """results/mutation.json is written by nox -s mutmut; the README shows its score."""
    from pathlib import Path

    committed = json.loads((Path(__file__).resolve().parents[2] / "results" / "mutation.json").read_text())
    assert committed["total"]["score"] >= mutation.GOAL and not committed["stale"]


def test_an_incomplete_run_says_which_modules_it_left_unchecked():
    result = mutation.score(META, {}, _diff)
    text = mutation.render({**result, "mutmut": "3.8", "created": "now"})
    assert "**Incomplete run**: 1 mutants were not checked (in `harness/tolerance.py`)" in text
    complete = mutation.score({"harness/oracle.py": {"harness.oracle.x_forward__mutmut_3": 1}}, {}, _diff)
    assert "Incomplete" not in mutation.render({**complete, "mutmut": "3.8", "created": "now"})


def test_a_module_left_out_of_a_narrowed_run_is_not_measured_not_scored():
    left_out = {"harness.checks.x_run__mutmut_1": None, "harness.checks.x_run__mutmut_2": None}
    meta = {**META, "harness/checks.py": left_out}
    result = mutation.score(meta, {}, _diff)
    assert result["not_measured"] == {"harness/checks.py": 2} and "harness/checks.py" not in result["modules"]
    assert result["total"]["score"] == 3 / 6  # as without it
    text = mutation.render({**result, "mutmut": "3.8", "created": "now"})
    assert "Not measured by this run: `harness/checks.py` (2 mutants)." in text
