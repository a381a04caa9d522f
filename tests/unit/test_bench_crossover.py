"""Crossover logic: the largest vocabulary where one-hot is at least as fast as gather."""

import math

import pytest

from harness.bench.crossover import compare_at, crossover_point, headline, ratio_interval, summarize


def test_crossover_in_the_middle():
    onehot = {4: 1.0, 16: 2.0, 64: 8.0, 256: 30.0}
    gather = {4: 3.0, 16: 3.0, 64: 3.0, 256: 3.0}
    got = crossover_point(onehot, gather)
    assert got["crossover_vocab"] == 16
    assert got["verdict"] == "16" and got["monotonic"]
    assert got["ratio_at_smallest"] == 3.0


def test_equal_times_count_as_at_least_as_fast():
    assert crossover_point({8: 2.0, 32: 5.0}, {8: 2.0, 32: 2.0})["crossover_vocab"] == 8


def test_medians_alone_decide_at_and_just_beyond_equality():
    assert compare_at(2.0, 2.0) == {"ratio": 1.0, "ci": None, "faster": "one-hot"}  # equal: one-hot
    slower = compare_at(2.0, math.nextafter(2.0, 3.0))  # one-hot a hair slower: gather
    assert slower["faster"] == "gather" and slower["ci"] is None
    assert compare_at(3.0, 1.5) == {"ratio": 2.0, "ci": None, "faster": "one-hot"}
    assert compare_at(1.5, 3.0) == {"ratio": 0.5, "ci": None, "faster": "gather"}


def test_the_full_verdict_of_a_crossover_in_the_middle():
    got = crossover_point({4: 2.0, 16: 2.0, 64: 8.0}, {4: 8.0, 16: 4.0, 64: 4.0})
    assert got == {
        "measured_from": 4, "measured_to": 64, "onehot_wins_at": [4, 16], "indistinguishable_at": [],
        "per_vocab": {"4": {"ratio": 4.0, "ci": None, "faster": "one-hot"},
                      "16": {"ratio": 2.0, "ci": None, "faster": "one-hot"},
                      "64": {"ratio": 0.5, "ci": None, "faster": "gather"}},
        "ratio_at_smallest": 4.0, "ci_at_smallest": None, "monotonic": True, "crossover_vocab": 16,
        "verdict": "16"}


# ---- the bootstrap interval --------------------------------------------------------------------
# gather rounds [1, 3], one-hot rounds [1, 1]: a resample of two gather rounds has median 1 (both 1),
# 2 (one of each) or 3 (both 3) with probabilities 1/4, 1/2, 1/4, and the one-hot median is always 1.
# So the ratio's 2.5th and 97.5th percentiles are 1 and 3, and its 30th and 70th are both 2: the
# interval follows from the distribution, not from the random draws.


def _reference_interval(gather, onehot, level=0.95, draws=2000, seed=20240611):
    """The documented method written out plainly: resample each side's rounds with replacement
    (gather's draws first, from one generator seeded with the harness's seed), take the median of
    each resample, and the central ``level`` percentiles of the ratio of medians."""
    import numpy as np

    rng = np.random.default_rng(seed)
    g_draws = [[gather[k] for k in row] for row in rng.integers(0, len(gather), (draws, len(gather)))]
    o_draws = [[onehot[k] for k in row] for row in rng.integers(0, len(onehot), (draws, len(onehot)))]
    ratios = [float(np.median(g)) / float(np.median(o)) for g, o in zip(g_draws, o_draws, strict=True)]
    outside = (1 - level) / 2 * 100
    return tuple(float(x) for x in np.percentile(ratios, [outside, 100 - outside]))


def test_ratio_interval_is_the_documented_bootstrap():
    # 40 and 30 distinct rounds (even counts: a median averages two), so the ratios rarely tie and a
    # percentile moved by a fraction lands on another value
    gather = [1.0 + 0.0137 * k * (-1) ** k + 0.0001 * k * k for k in range(40)]
    onehot = [0.9 + 0.0211 * k + 0.00007 * k * k for k in range(30)]
    for level in (0.95, 0.8):
        assert ratio_interval(gather, onehot, level) == pytest.approx(_reference_interval(gather, onehot, level),
                                                                      rel=1e-12)
    assert ratio_interval(gather, onehot) == ratio_interval(gather, onehot)  # seeded: the same every run


def test_ratio_interval_follows_the_resampled_medians():
    assert ratio_interval([1.0, 3.0], [1.0, 1.0]) == (1.0, 3.0)
    assert ratio_interval([1.0, 3.0], [1.0, 1.0], level=0.4) == (2.0, 2.0)
    assert ratio_interval([2.0, 2.0], [4.0, 4.0]) == (0.5, 0.5)  # no spread: the ratio itself
    assert ratio_interval([1.0, 3.0, 2.0], [1.0, 1.0]) == ratio_interval([1.0, 3.0, 2.0], [1.0, 1.0])  # seeded


@pytest.mark.parametrize(("gather", "onehot", "faster"), [
    ([3.0, 3.0], [1.0, 1.0], "one-hot"),  # interval (3, 3): wholly above 1
    ([1.0, 3.0], [1.0, 1.0], "indistinguishable"),  # (1, 3): its low end is exactly 1, not above
    ([2.0, 2.0], [2.0, 2.0], "indistinguishable"),  # (1, 1)
    ([1.0, 1.0], [1.0, 3.0], "indistinguishable"),  # (1/3, 1): its high end is exactly 1, not below
    ([1.0, 1.0], [2.0, 2.0], "gather"),  # (0.5, 0.5)
])
def test_with_rounds_the_interval_decides_strictly_above_or_below_one(gather, onehot, faster):
    got = compare_at(2.0, 4.0, gather, onehot)  # the ratio is still the medians' (2 / 4)
    assert got["faster"] == faster and got["ratio"] == 0.5 and got["ci"] is not None


def test_rounds_are_used_only_when_both_sides_have_two():
    # medians 1.0 and 1.0 (one-hot "wins" on medians), rounds say gather is twice as fast
    assert compare_at(1.0, 1.0, [1.0, 1.0], [2.0, 2.0])["faster"] == "gather"
    assert compare_at(1.0, 1.0, [1.0], [2.0, 2.0]) == {"ratio": 1.0, "ci": None, "faster": "one-hot"}
    assert compare_at(1.0, 1.0, [1.0, 1.0], [2.0]) == {"ratio": 1.0, "ci": None, "faster": "one-hot"}
    assert compare_at(1.0, 1.0, None, [2.0, 2.0])["ci"] is None
    assert compare_at(1.0, 1.0, [1.0, 1.0], [])["ci"] is None


def test_never_in_the_measured_range():
    got = crossover_point({4: 5.0, 16: 9.0}, {4: 1.0, 16: 1.0, 64: 1.0})
    assert got["crossover_vocab"] is None
    assert got["verdict"] == "never in the measured range (V=4..16)"


def test_still_winning_at_the_largest_common_vocabulary():
    got = crossover_point({4: 1.0, 16: 1.0}, {4: 2.0, 16: 2.0, 4096: 2.0})
    assert got["crossover_vocab"] == 16 and got["verdict"].startswith(">= 16")


def test_non_monotonic_is_flagged():
    got = crossover_point({4: 1.0, 16: 5.0, 64: 1.0, 256: 9.0}, {4: 2.0, 16: 2.0, 64: 2.0, 256: 2.0})
    assert got["crossover_vocab"] == 64 and not got["monotonic"] and "not monotonic" in got["verdict"]


def test_nothing_in_common():
    assert crossover_point({4: 1.0}, {8: 1.0}) == {
        "crossover_vocab": None, "verdict": "no vocabulary measured for both", "measured_from": None,
        "measured_to": None, "monotonic": None}


def test_the_verdicts_in_words():
    assert crossover_point({4: 1.0, 16: 1.0}, {4: 2.0, 16: 2.0})["verdict"] == (
        ">= 16 (one-hot still as fast at the largest vocabulary measured for both)")
    got = crossover_point({4: 1.0, 16: 5.0, 64: 1.0, 256: 9.0}, {4: 2.0, 16: 2.0, 64: 2.0, 256: 2.0})
    assert got["verdict"] == "64 (not monotonic: see the table)" and got["onehot_wins_at"] == [4, 64]
    # wins at every vocabulary up to the crossover: monotonic, even with a loss only after it
    assert crossover_point({4: 1.0, 16: 1.0, 64: 9.0}, {4: 2.0, 16: 2.0, 64: 2.0})["monotonic"] is True
    # a first loss before the crossover: not monotonic
    assert crossover_point({4: 9.0, 16: 1.0, 64: 9.0}, {4: 2.0, 16: 2.0, 64: 2.0})["monotonic"] is False
    unclear = crossover_point({4: 1.0, 16: 1.0}, {4: 2.0, 16: 1.0}, {4: [1.0, 1.0], 16: [1.0, 1.0]},
                              {4: [2.0, 2.0], 16: [1.0, 3.0]})
    assert unclear["verdict"] == "4; indistinguishable at V=16" and unclear["ci_at_smallest"] == [2.0, 2.0]
    never = crossover_point({4: 1.0, 16: 1.0}, {4: 1.0, 16: 1.0}, {4: [3.0, 3.0], 16: [1.0, 1.0]},
                            {4: [1.0, 1.0], 16: [1.0, 3.0]})
    assert never["verdict"] == "never in the measured range (V=4..16); indistinguishable at V=16"
    assert never["monotonic"] is True and never["crossover_vocab"] is None
    two = crossover_point({4: 1.0, 16: 1.0, 64: 1.0}, {4: 2.0, 16: 1.0, 64: 1.0},
                          {4: [1.0, 1.0], 16: [1.0, 1.0], 64: [1.0, 1.0]},
                          {4: [2.0, 2.0], 16: [1.0, 3.0], 64: [2.0, 2.0, 0.5, 0.5]})
    assert two["indistinguishable_at"] == [16, 64] and two["verdict"] == "4; indistinguishable at V=16, 64"


def _row(adapter, vocab, median, device="cpu", pass_="forward", status="ok"):
    return {"adapter": adapter, "vocab": vocab, "median_s": median, "status": status, "device": device,
            "dtype": "float32", "pass": pass_, "dim": 64, "distribution": "uniform", "n_ids": 16384}


ADAPTERS = {
    "t-gather": {"variant": "gather", "framework_label": "t", "gather_twin": "t-gather"},
    "t-onehot": {"variant": "onehot", "framework_label": "t", "gather_twin": "t-gather"},
    "t-gather-cuda": {"variant": "gather", "framework_label": "t", "gather_twin": "t-gather-cuda"},
    "t-onehot-cuda": {"variant": "onehot", "framework_label": "t", "gather_twin": "t-gather-cuda"},
}


def test_summarize_pairs_each_onehot_with_its_gather_twin_per_device():
    rows = [
        _row("t-gather", 8, 2.0), _row("t-gather", 64, 2.0), _row("t-onehot", 8, 1.0), _row("t-onehot", 64, 4.0),
        _row("t-gather-cuda", 8, 1.0, "cuda"), _row("t-gather-cuda", 64, 1.0, "cuda"),
        _row("t-onehot-cuda", 8, 0.5, "cuda"), _row("t-onehot-cuda", 64, 0.9, "cuda"),
        _row("t-onehot", 512, None, status="skipped"),
        _row("t-onehot", 8, 1.0, pass_="forward_backward"),  # no gather in that series: no entry
    ]
    entries = summarize(rows, ADAPTERS)
    by_device = {e["device"]: e for e in entries}
    assert len(entries) == 2
    assert by_device["cpu"]["crossover_vocab"] == 8 and by_device["cpu"]["gather_adapter"] == "t-gather"
    assert by_device["cuda"]["crossover_vocab"] == 64
    assert all(e["framework"] == "t" for e in entries)
    assert headline(entries) == entries
    assert headline(entries, pass_="forward_backward") == []


def test_summarize_carries_the_rounds_and_leaves_out_what_has_no_twin():
    rows = [{**_row("t-gather", 8, 1.0), "samples": [1.0, 1.0]}, {**_row("t-onehot", 8, 1.0), "samples": [2.0, 2.0]},
            _row("t-gather", 64, 0.0), _row("t-onehot", 64, 0.5),  # a zero median is not a measurement
            _row("t-onehot", 16, 0.5, status="error")]
    (entry,) = summarize(rows, ADAPTERS)
    assert entry["per_vocab"]["8"]["faster"] == "gather" and entry["per_vocab"]["8"]["ci"] == [0.5, 0.5]
    assert entry["measured_from"] == entry["measured_to"] == 8
    assert (entry["onehot_adapter"], entry["dim"], entry["n_ids"]) == ("t-onehot", 64, 16384)
    no_twin = {**ADAPTERS, "t-onehot": {"variant": "onehot", "framework": "t"}}
    assert summarize(rows, no_twin) == []
    gather_only = {**ADAPTERS, "t-onehot": {"variant": "gather", "gather_twin": "t-gather"}}
    assert summarize(rows, gather_only) == []
    assert summarize([_row("t-onehot", 8, 1.0)], ADAPTERS) == []  # the twin was not measured
    labelled = {**ADAPTERS, "t-onehot": {"variant": "onehot", "framework": "torch", "gather_twin": "t-gather"}}
    assert summarize(rows[:2], labelled)[0]["framework"] == "torch"  # no label: the framework
    unknown = {k: v for k, v in ADAPTERS.items() if k != "t-onehot"}  # rows of an adapter never described
    assert summarize(rows, unknown) == []


def test_a_compiled_pair_is_a_row_of_its_own_named_by_its_mode():
    compiled = {**ADAPTERS, "t-onehot": {**ADAPTERS["t-onehot"], "mode": "compile"}}
    rows = [_row("t-gather", 8, 1.0), _row("t-onehot", 8, 2.0)]
    assert summarize(rows, compiled)[0]["framework"] == "t compile"
    eager = {**ADAPTERS, "t-onehot": {**ADAPTERS["t-onehot"], "mode": "eager"}}
    assert summarize(rows, eager)[0]["framework"] == "t"


def test_summarize_lists_entries_by_adapter():
    adapters = {**ADAPTERS, "a-onehot": {"variant": "onehot", "framework_label": "a", "gather_twin": "t-gather"}}
    rows = [_row("t-gather", 8, 1.0), _row("t-onehot", 8, 9.0), _row("a-onehot", 8, 0.5)]
    assert [e["onehot_adapter"] for e in summarize(rows, adapters)] == ["a-onehot", "t-onehot"]


def test_headline_is_float32_forward_uniform_by_default():
    base = {"dtype": "float32", "pass": "forward", "distribution": "uniform"}
    entries = [base, {**base, "dtype": "bfloat16"}, {**base, "pass": "forward_backward"},
               {**base, "distribution": "zipf"}]
    assert headline(entries) == [base]
    assert headline(entries, dtype="bfloat16") == [entries[1]]
    assert headline(entries, distribution="zipf") == [entries[3]]


def test_with_rounds_a_small_ratio_inside_the_noise_decides_nothing():
    """Medians 1.00 vs 1.03 with rounds spread +-10 %: the interval straddles 1."""
    import numpy as np

    rng = np.random.default_rng(1)
    noisy = {v: list(1.0 + 0.1 * rng.standard_normal(15)) for v in (4, 16)}
    tight_slow = {4: [3.0 + 0.01 * k for k in range(15)], 16: [3.0 + 0.01 * k for k in range(15)]}
    onehot = {4: float(np.median(noisy[4])), 16: 9.0}
    gather = {4: onehot[4] * 1.03, 16: 3.0}
    gather_samples = {4: [x * 1.03 for x in noisy[4]], 16: tight_slow[16]}
    onehot_samples = {4: list(1.0 + 0.1 * rng.standard_normal(15)), 16: [9.0 + 0.01 * k for k in range(15)]}
    got = crossover_point(onehot, gather, onehot_samples, gather_samples)
    assert got["indistinguishable_at"] == [4] and got["onehot_wins_at"] == []
    assert got["crossover_vocab"] is None and "indistinguishable at V=4" in got["verdict"]
    low, high = got["per_vocab"]["4"]["ci"]
    assert low < 1 < high
    assert got["per_vocab"]["16"]["faster"] == "gather" and got["per_vocab"]["16"]["ci"][1] < 1
    # on medians alone the same numbers would have called a one-hot win at 4 (ratio 1.03)
    assert crossover_point(onehot, gather)["onehot_wins_at"] == [4]


def test_a_clear_win_has_its_whole_interval_above_one():
    rounds = [1.0 + 0.001 * k for k in range(9)]
    got = crossover_point({4: 1.0}, {4: 2.0}, {4: rounds}, {4: [2 * x for x in rounds]})
    assert got["onehot_wins_at"] == [4] and got["per_vocab"]["4"]["ci"][0] > 1.9
