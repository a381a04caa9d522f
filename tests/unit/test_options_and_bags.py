"""Layer options, bags and compiled modes: the oracles against values written out by hand, the
bag strategy's promises, the checks' verdicts on small hand-made adapters, and what the
conformance and benchmark renderers make of them."""

import numpy as np
import pytest
from hypothesis import given, settings

from harness import bags as bag_oracle
from harness import oracle
from harness.bags import Bags, bag_cases
from harness.bench import metrics, sweep
from harness.checks import CHECKS_BY_NAME, run_check
from harness.views import bench as tables
from harness.views import conformance as conformance_view

W = np.array([[1.0, 2.0], [-3.0, 4.0], [5.0, -6.0]], dtype=np.float32)


# --- oracles of the layer options ------------------------------------------------------------
def test_padding_row_gets_no_gradient_and_a_negative_index_counts_from_the_end():
    ids, up = np.array([0, 2, 2]), np.array([[1.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    assert oracle.gradient_with_padding(ids, up, 3, 2).tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    assert oracle.gradient_with_padding(ids, up, 3, -1).tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]


def test_scale_grad_by_freq_divides_each_row_by_its_count():
    ids, up = np.array([1, 1, 0, 1]), np.array([[3.0, 0.0], [6.0, 3.0], [5.0, 5.0], [0.0, 3.0]])
    assert oracle.gradient_scaled_by_freq(ids, up, 3).tolist() == [[5.0, 5.0], [3.0, 2.0], [0.0, 0.0]]


def test_renormalised_scales_only_looked_up_rows_over_max_norm():
    table = np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]], dtype=np.float32)  # 2-norms 5, 0.5, 10
    after = oracle.renormalised(table, np.array([0, 1, 0]), 1.0, 2.0)
    assert after[0] == pytest.approx([3.0 / (5 + 1e-7), 4.0 / (5 + 1e-7)], rel=1e-12)
    assert after[1].tolist() == pytest.approx([0.3, 0.4])  # under the limit: unchanged
    assert after[2].tolist() == [6.0, 8.0]  # over the limit but not looked up: unchanged
    assert oracle.renormalised(table, np.array([2]), 7.0, 1.0)[2] == pytest.approx([3.0, 4.0], rel=1e-7)  # 1-norm 14


def test_mask_zero_marks_every_id_but_zero():
    assert oracle.mask_zero(np.array([[0, 3], [1, 0]])).tolist() == [[False, True], [True, False]]


# --- oracles of the bags ----------------------------------------------------------------------
BAGS = Bags(np.array([1, 1, 2, 0, 2]), np.array([0, 0, 3, 4]))  # bags: [], [1, 1, 2], [0], [2]


def test_bag_structure():
    assert BAGS.lengths.tolist() == [0, 3, 1, 1] and BAGS.segment_ids.tolist() == [1, 1, 1, 2, 3]
    assert BAGS.as_matrix() is None
    assert Bags(np.array([1, 2, 0, 0]), np.array([0, 2])).as_matrix().tolist() == [[1, 2], [0, 0]]
    with pytest.raises(ValueError, match="start at 0"):
        Bags(np.array([1]), np.array([1]))
    with pytest.raises(ValueError, match="mode"):
        Bags(np.array([1]), np.array([0]), "prod")


def test_bag_forward_by_mode_leaves_empty_bags_undecided():
    out = {mode: bag_oracle.forward(W, BAGS.with_mode(mode)) for mode in bag_oracle.MODES}
    assert np.isnan(out["sum"][0]).all() and np.isnan(out["max"][0]).all()
    assert out["sum"][1:].tolist() == [[-1.0, 2.0], [1.0, 2.0], [5.0, -6.0]]  # -3-3+5, 4+4-6
    assert out["mean"][1:].tolist() == [[-1.0 / 3, 2.0 / 3], [1.0, 2.0], [5.0, -6.0]]
    assert out["max"][1:].tolist() == [[5.0, 4.0], [1.0, 2.0], [5.0, -6.0]]


def test_bag_forward_weights_each_id():
    weighted = Bags(BAGS.ids, BAGS.offsets, "sum", np.array([1.0, -1.0, 0.5, 2.0, 3.0]))
    assert bag_oracle.forward(W, weighted)[1:].tolist() == [[2.5, -3.0], [2.0, 4.0], [15.0, -18.0]]


def test_bag_gradient_by_mode():
    up = np.array([[9.0, 9.0], [1.0, 10.0], [100.0, 1000.0], [7.0, 8.0]])
    assert bag_oracle.gradient(W, BAGS, up).tolist() == [[100.0, 1000.0], [2.0, 20.0], [8.0, 18.0]]
    mean = bag_oracle.gradient(W, BAGS.with_mode("mean"), up)
    assert mean == pytest.approx(np.array([[100.0, 1000.0], [2 / 3, 20 / 3], [1 / 3 + 7, 10 / 3 + 8]]))
    # max: column 0 is held by row 2 (5.0), column 1 by row 1 (4.0, first of the two equal positions)
    assert bag_oracle.gradient(W, BAGS.with_mode("max"), up).tolist() == [[100.0, 1000.0], [0.0, 10.0],
                                                                          [8.0, 8.0]]


def test_bag_term_counts_and_absolute_sums():
    per_bag, per_row = bag_oracle.term_counts(BAGS, 3)
    assert per_bag.tolist() == [0, 3, 1, 1] and per_row.tolist() == [1, 2, 2]
    assert bag_oracle.abs_forward(W, BAGS)[1].tolist() == [11.0, 14.0]  # 3+3+5, 4+4+6


@settings(max_examples=60, deadline=None, derandomize=True)
@given(case=bag_cases("max", weighted=True))
def test_bag_cases_rebuild_from_their_recipes_and_keep_their_promises(case):
    weights, bags, up = case
    assert weights.dtype == np.float32 and up.shape == (bags.n_bags, weights.shape[1])
    assert bags.ids.size == 0 or 0 <= bags.ids.min() <= bags.ids.max() < weights.shape[0]
    assert bags.per_sample_weights.shape == bags.ids.shape
    remade = {name: eval(recipe, {"np": np}) for name, recipe in bags.recipes.items()}
    assert np.array_equal(remade["W"], weights) and np.array_equal(remade["ids"], bags.ids)
    assert np.array_equal(remade["offsets"], bags.offsets) and np.array_equal(remade["up"], up)


def test_bag_cases_reach_empty_huge_and_duplicate_bags():
    seen = set()

    @settings(max_examples=200, deadline=None, derandomize=True)
    @given(case=bag_cases("sum"))
    def look(case):
        _, bags, _ = case
        if (bags.lengths == 0).any():
            seen.add("empty")
        if (bags.lengths >= 200).any():
            seen.add("huge")
        for start, length in zip(bags.offsets, bags.lengths, strict=True):
            if length > len(np.unique(bags.ids[start:start + length])):
                seen.add("duplicates")

    look()
    assert seen == {"empty", "huge", "duplicates"}


# --- the checks on small hand-made adapters ---------------------------------------------------
def test_faithful_bag_passes_and_each_broken_one_fails_its_check():
    from broken_adapters import FaithfulBag, GradientIgnoresSampleWeights, PaddingCountedInMean

    assert {run_check(FaithfulBag(), c).status for c in CHECKS_BY_NAME if c.startswith("bag_")} <= {
        "passed", "not_applicable"}
    assert run_check(GradientIgnoresSampleWeights(), "bag_per_sample_weights").status == "failed"
    assert run_check(GradientIgnoresSampleWeights(), "bag_sum").status == "passed"  # unweighted sums are right
    assert run_check(PaddingCountedInMean(), "bag_padding_idx").status == "failed"


def test_lookup_and_bag_checks_do_not_cross_families():
    from broken_adapters import Faithful, FaithfulBag

    lookup, bag = run_check(FaithfulBag(), "forward[float32]"), run_check(Faithful(), "bag_sum")
    assert (lookup.status, bag.status) == ("not_applicable", "not_applicable")
    assert "bag adapter" in lookup.detail and "lookup adapter" in bag.detail


def test_an_undeclared_option_is_not_applicable_and_configured_refuses_it():
    from broken_adapters import FaithfulBag

    result = run_check(FaithfulBag(), "option_mask_zero")
    assert result.status == "not_applicable"
    with pytest.raises(ValueError, match="offers no layer option"):
        FaithfulBag().configured(max_norm=1.0)


def test_the_option_checks_pass_on_the_faithful_adapter_and_record_the_masked_positions():
    from broken_adapters import Faithful

    for name in ("option_padding_idx", "option_max_norm", "option_scale_grad_by_freq"):
        assert run_check(Faithful(), name).status == "passed", name
    masked = run_check(Faithful(), "option_mask_zero")
    assert masked.status == "passed"
    assert masked.observed == {"mask_zero_output": "W[0]", "mask_zero_gradient": "accumulated"}


def test_several_distinct_failures_are_each_described():
    from harness.checks import _describe_failure, _excusable

    class Several(Exception):  # what Hypothesis raises: an ExceptionGroup (or its backport before 3.11)
        def __init__(self, subs):
            super().__init__("two")
            self.exceptions = tuple(subs)

    group = Several([AssertionError("first bug"), ValueError("second bug")])
    text = _describe_failure(group)
    assert text.startswith("2 distinct failures") and "first bug" in text and "second bug" in text
    assert _excusable(group)


# --- what the renderers make of them ----------------------------------------------------------
def _adapter(aid, twin=None, observed=None, checks=()):
    return {"id": aid, "eager_twin": twin, "observed": observed or {},
            "checks": [{"check": c, "status": s, "detail": d} for c, s, d in checks]}


def test_compiling_changes_lists_observed_and_status_differences_only():
    eager = _adapter("t-gather", observed={"negative_index": "raise", "index_dtypes": ["int64", "int32"]},
                     checks=[("deterministic", "passed", ""), ("x", "passed", ""), ("y", "not_applicable", "no")])
    compiled = _adapter("t-gather-compile", "t-gather",
                        observed={"negative_index": "wrap", "index_dtypes": ["int32", "int64"]},
                        checks=[("deterministic", "xfailed", "declared deviation: atomics\nmore"),
                                ("x", "passed", ""), ("y", "failed", "boom")])
    rows = conformance_view.compiling_changes([eager, compiled])
    assert rows == [["t-gather-compile", "t-gather", "id -1", "raise", "wrap"],
                    ["t-gather-compile", "t-gather", "check deterministic", "passed",
                     "xfailed: declared deviation: atomics"]]  # same dtypes in another order: no row
    table = conformance_view.compiling_table([eager, compiled, _adapter("j-jit", "t-gather")])
    assert table.rows == rows and table.note == "No difference from the eager twin: j-jit."
    section = "\n".join(conformance_view.families_sections([eager, compiled, _adapter("j-jit", "t-gather")]))
    assert "No difference from the eager twin: j-jit." in section


def test_options_section_shows_each_option_and_what_the_mask_left():
    a = _adapter("k-gather", observed={"mask_zero_output": "W[0]", "mask_zero_gradient": "accumulated"},
                 checks=[("option_mask_zero", "passed", ""), ("option_padding_idx", "not_applicable", "none")])
    plain = _adapter("n-gather", checks=[("option_mask_zero", "not_applicable", "none")])
    assert conformance_view.options_table([a, plain]).rows == [
        ["k-gather", "n/a", "–", "–", "pass (masked positions: output W[0], gradient accumulated)"]]
    text = "\n".join(conformance_view.families_sections([a, plain]))
    assert "| k-gather | n/a | – | – | pass (masked positions: output W\\[0\\], gradient accumulated) |" in text
    assert "n-gather" not in text


def test_bag_bytes_read_every_id_and_write_one_row_per_bag():
    # 64 ids in 8 bags, D=4 float32, int32 ids: 64*(16+4) + 8*16
    assert metrics.useful_bytes("forward", 64, 100, 4, 4, 4, 10, rows=8) == 64 * 20 + 8 * 16
    assert metrics.useful_bytes("forward", 64, 100, 4, 4, 4, 10) == 64 * (2 * 16 + 4)


def test_bag_cases_come_only_from_pooling_blocks_and_carry_l_in_their_key():
    profile = sweep.get_profile("smoke")
    bags = sweep.cases_for(profile, family="bag")
    lookups = sweep.cases_for(profile)
    assert bags and all(c.pooling for c in bags) and not any(c.pooling for c in lookups)
    case = next(c for c in bags if c.pooling == 8)
    assert case.key.endswith("-L8") and case.output_rows == case.n_ids // 8
    assert "pooling" not in lookups[0].as_dict() and sweep.Case.from_dict(case.as_dict()) == case
    made = sweep.bags_of(np.arange(16), 8)
    assert made.offsets.tolist() == [0, 8] and made.mode == "sum"


def test_bag_rows_stay_out_of_the_lookup_tables_and_get_their_own():
    base = {"device": "cpu", "pass": "forward", "vocab": 64, "dim": 8, "n_ids": 64, "status": "ok",
            "median_s": 1e-5, "gbps": 1.5}
    bag = {**base, "adapter": "t-bag", "pooling": 8}
    lookup = {**base, "adapter": "t-gather", "pooling": None}
    assert sweep.sized_rows([bag, lookup]) == [lookup] and sweep.bag_rows([bag, lookup]) == [bag]
    text = tables.bag_table([bag, lookup])
    assert "| 8 (8 bags) | 10 µs (1.5 GB/s) |" in text and "t-gather" not in text


def test_the_report_shows_the_families_per_machine():
    from pathlib import Path

    from harness.report.load import MachineResults
    from harness.views.report_md import families_section

    def entry(aid, twin, negative, status):
        return {"id": aid, "eager_twin": twin, "observed": {"negative_index": negative},
                "checks": [{"check": "negative_index", "status": status, "detail": ""}]}

    doc = {"hypothesis_profile": "ci",
           "adapters": [entry("t-gather", None, "raise", "passed"), entry("t-gather-compile", "t-gather", "wrap",
                                                                          "passed")]}
    bag = {"adapter": "t-bag", "device": "cpu", "pass": "forward", "vocab": 64, "dim": 8, "n_ids": 64,
           "pooling": 8, "status": "ok", "median_s": 2e-5, "gbps": 0.5}
    with_both = MachineResults("m1", Path("m1"), conformance=doc, bench_rows=[bag])
    text = "\n".join(families_section([with_both, MachineResults("m2", Path("m2"))]))
    assert text.startswith("## Compiled modes, layer options and bags")
    assert "### `m1`" in text and "`m2`" not in text  # a machine with nothing to show is left out
    assert "| t-gather-compile | t-gather | id -1 | raise | wrap |" in text
    assert "#### Bags by pooling factor" in text and "| 8 (8 bags) | 20 µs (0.5 GB/s) |" in text
    assert families_section([MachineResults("m2", Path("m2"))]) == []
