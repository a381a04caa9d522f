"""Bytes formulas, derived figures and cache fit of harness.bench.metrics."""

import math

import pytest

from harness.bench import metrics


def test_forward_bytes_is_row_read_row_write_and_index_read():
    # N=1000 lookups of D=64 float32 rows with int32 ids: 1000 * (2*64*4 + 4)
    assert metrics.forward_bytes(1000, 64, 4, 4) == 516_000
    # the index width counts: int64 ids add 4 more bytes per lookup
    assert metrics.forward_bytes(1000, 64, 4, 8) - metrics.forward_bytes(1000, 64, 4, 4) == 4000


def test_dense_backward_counts_zero_fill_and_touched_rows_once():
    n, dim, s, i, unique, vocab = 100, 8, 4, 4, 10, 1000
    expected = n * dim * s + n * i + 2 * unique * dim * s + vocab * dim * s
    assert metrics.backward_bytes(n, dim, s, i, unique, vocab, "dense") == expected == 36_240
    # the V*D*s zero-fill is a floor that grows with the table, not with N
    bigger = metrics.backward_bytes(n, dim, s, i, unique, 10 * vocab, "dense")
    assert bigger - expected == 9 * vocab * dim * s


def test_sparse_backward_has_no_table_term():
    small = metrics.backward_bytes(100, 8, 4, 4, 10, 1000, "sparse")
    huge = metrics.backward_bytes(100, 8, 4, 4, 10, 10**9, "sparse")
    assert small == huge == 2 * 100 * 8 * 4 + 2 * 100 * 4


def test_useful_bytes_forward_backward_is_the_backward():
    both = metrics.useful_bytes("forward_backward", 100, 1000, 8, 4, 4, 10, "dense")
    assert both == metrics.backward_bytes(100, 8, 4, 4, 10, 1000, "dense")
    with pytest.raises(ValueError):
        metrics.useful_bytes("backward", 1, 1, 1, 4, 4, 1)


def test_flops_of_the_one_hot_matmul():
    assert metrics.flops("forward", 16384, 512, 64) == 2 * 16384 * 512 * 64
    assert metrics.flops("forward_backward", 16384, 512, 64) == 4 * 16384 * 512 * 64


def test_derived_figures():
    got = metrics.derived(pass_="forward", variant="gather", n=1000, vocab=100, dim=64, s=4, i=4,
                          unique=100, gradient="dense", median_s=1e-3, copy_gbps=10.0)
    assert got["lookups_per_s"] == pytest.approx(1e6)
    assert got["gbps"] == pytest.approx(516_000 / 1e-3 / 1e9)
    assert got["pct_copy_bw"] == pytest.approx(100 * got["gbps"] / 10.0)
    assert got["gflops"] is None  # FLOP/s only for one-hot variants
    onehot = metrics.derived(pass_="forward", variant="onehot", n=1000, vocab=100, dim=64, s=4, i=4,
                             unique=100, gradient="dense", median_s=1e-3, copy_gbps=None)
    assert onehot["gflops"] == pytest.approx(2 * 1000 * 100 * 64 / 1e-3 / 1e9)
    assert onehot["pct_copy_bw"] is None


@pytest.mark.parametrize("median", [None, 0.0, -1.0])
def test_no_figures_without_a_time(median):
    got = metrics.derived(pass_="forward", variant="onehot", n=1, vocab=1, dim=1, s=4, i=4, unique=1,
                          gradient="dense", median_s=median, copy_gbps=1.0)
    assert all(v is None for v in got.values())


def test_cache_fit():
    l2, l3 = 1 << 20, 32 << 20
    assert metrics.cache_fit(4096, l2, l3) == "L2"
    assert metrics.cache_fit(l2 + 1, l2, l3) == "L3"
    assert metrics.cache_fit(l3 + 1, l2, l3) == "no"
    assert metrics.cache_fit(10, None, None) == ""


def test_formula_text_matches_the_code():
    # The BENCH.md text documents the same terms the functions compute.
    for term in ("N*(2*D*s + i)", "2*U*D*s", "V*D*s", "2*N*V*D"):
        assert term in metrics.BYTES_FORMULA_MD
    assert not math.isnan(metrics.forward_bytes(1, 1, 1, 1))


def test_forward_backward_is_charged_the_gradient_it_returns_alone():
    """jax.jit drops the forward nobody returns: at V=2 JAX's forward_backward was faster than its
    forward and, charged both, reported 357 % of the copy bandwidth."""
    n, vocab, dim, s, i, unique = 1000, 2, 64, 4, 4, 2
    backward = n * dim * s + n * i + 2 * unique * dim * s + vocab * dim * s  # 256000 + 4000 + 1024 + 512
    assert backward == 261_536
    assert metrics.useful_bytes("forward_backward", n, vocab, dim, s, i, unique, "dense") == backward
    assert metrics.useful_bytes("forward", n, vocab, dim, s, i, unique) == 516_000


def test_hot_or_cold_follows_the_bytes_a_loop_touches_not_the_table():
    l2, l3 = 1 << 20, 32 << 20
    # 16384 ids over a 128 MiB table (2M x 64 float32): one batch touches ~4 MiB of rows + 4 MiB
    # of output, which stay in the 32 MiB L3 call after call: hot, whatever the table size
    one = metrics.touched_bytes(16384, 2 << 20, 64, 4, 4, unique=16320)
    assert one == 16320 * 256 + 16384 * 256 + 16384 * 4
    assert metrics.cache_fit(one, l2, l3) == "L3"
    # 32 batches rotated: 32 x 4 MiB of distinct rows: cold
    assert metrics.cache_fit(metrics.touched_bytes(16384, 2 << 20, 64, 4, 4, 16320, batches=32), l2, l3) == "no"
    # never more rows than the table holds
    assert metrics.touched_bytes(10, 4, 8, 4, 4, unique=4, batches=100) == 4 * 32 + 10 * 32 + 40
