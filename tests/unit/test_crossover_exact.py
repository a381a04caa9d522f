"""Exact values of the crossover arithmetic, worked out by hand (not by calling the code)."""

from harness.bench import crossover, metrics


def test_a_zero_width_interval_is_the_bootstrap_median_on_both_ends():
    # Every resample of [2, 2, 2] / [1, 1, 1] has ratio 2, so any level gives [2, 2]; at level 0
    # both ends are the 50th percentile (a tail of 50, not 50.5 and 49.5 crossing over).
    assert crossover.ratio_interval([2.0, 2.0, 2.0], [1.0, 1.0, 1.0], level=0.95) == (2.0, 2.0)
    low, high = crossover.ratio_interval([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0], level=0.0)
    assert low == high


def test_the_interval_widens_with_the_level():
    g, o = [1.0, 1.2, 0.9, 1.1, 1.05], [0.5, 0.6, 0.55, 0.45, 0.5]
    low90, high90 = crossover.ratio_interval(g, o, level=0.90)
    low99, high99 = crossover.ratio_interval(g, o, level=0.99)
    assert low99 <= low90 < high90 <= high99
    assert 1.5 < low99 and high99 < 2.7  # every resampled ratio lies in [0.9/0.6, 1.2/0.45]


def test_compare_at_reports_gather_over_onehot():
    got = crossover.compare_at(3.0, 1.5, [3.0, 3.1, 2.9], [1.5, 1.6, 1.4])
    assert got["ratio"] == 2.0 and got["faster"] == "one-hot" and got["ci"][0] > 1
    assert crossover.compare_at(1.0, 4.0) == {"ratio": 0.25, "ci": None, "faster": "gather"}


def test_the_ratio_at_the_smallest_vocabulary_is_gather_over_onehot_there():
    assert crossover.crossover_point({2: 0.5, 8: 2.0}, {2: 1.0, 8: 1.0})["ratio_at_smallest"] == 2.0


def test_useful_bytes_counts_a_dense_gradient_by_default():
    # forward_backward, N=4 ids over V=10 rows of D=2 float32, int32 ids, 3 unique rows
    dense = metrics.useful_bytes("forward_backward", 4, 10, 2, 4, 4, 3, "dense")
    assert metrics.useful_bytes("forward_backward", 4, 10, 2, 4, 4, 3) == dense
    assert dense != metrics.useful_bytes("forward_backward", 4, 10, 2, 4, 4, 3, "sparse")
