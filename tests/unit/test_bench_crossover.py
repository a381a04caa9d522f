"""Crossover logic: the largest vocabulary where one-hot is at least as fast as gather."""

from harness.bench.crossover import crossover_point, headline, summarize


def test_crossover_in_the_middle():
    onehot = {4: 1.0, 16: 2.0, 64: 8.0, 256: 30.0}
    gather = {4: 3.0, 16: 3.0, 64: 3.0, 256: 3.0}
    got = crossover_point(onehot, gather)
    assert got["crossover_vocab"] == 16
    assert got["verdict"] == "16" and got["monotonic"]
    assert got["ratio_at_smallest"] == 3.0


def test_equal_times_count_as_at_least_as_fast():
    assert crossover_point({8: 2.0, 32: 5.0}, {8: 2.0, 32: 2.0})["crossover_vocab"] == 8


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
    assert crossover_point({4: 1.0}, {8: 1.0})["crossover_vocab"] is None


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
