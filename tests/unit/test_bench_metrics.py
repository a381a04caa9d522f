"""Bytes formulas, derived figures and cache fit of harness.bench.metrics.

Every expected number is worked out by hand in a comment, never computed by the code under test.
The running example: a V=4 x D=8 float32 table (s=4), N=16 int32 ids (i=4), U=3 distinct ids,
median 1e-6 s, copy bandwidth 4 GB/s."""

import re

import pytest

from harness.bench import metrics

EXACT = 1e-12  # relative: a float division or two, nothing more

EXAMPLE = dict(n=16, vocab=4, dim=8, s=4, i=4, unique=3)


def _derived(**overrides):
    args = dict(pass_="forward", variant="gather", **EXAMPLE, gradient="dense", median_s=1e-6, copy_gbps=4.0)
    args.update(overrides)
    return metrics.derived(**args)


# ---- useful bytes ------------------------------------------------------------------------------


def test_forward_bytes_is_row_read_row_write_and_index_read():
    # 16 * (8*4 read + 8*4 written + 4 index) = 16 * 68
    assert metrics.forward_bytes(16, 8, 4, 4) == 1088
    # N=1000 lookups of D=64 float32 rows: 1000 * (256 + 256 + 4) = 516000; int64 ids: 520000
    assert metrics.forward_bytes(1000, 64, 4, 4) == 516_000
    assert metrics.forward_bytes(1000, 64, 4, 8) == 520_000


def test_dense_backward_counts_zero_fill_and_touched_rows_once():
    # read dY 16*8*4 = 512, read ids 16*4 = 64, read+write 3 touched rows 2*3*32 = 192, zero-fill 4*32 = 128
    assert metrics.backward_bytes(16, 8, 4, 4, 3, 4, "dense") == 896
    # 100 ids, D=8, U=10, V=1000: 3200 + 400 + 640 + 32000
    assert metrics.backward_bytes(100, 8, 4, 4, 10, 1000, "dense") == 36_240
    # the zero-fill grows with the table, not with N: V=10000 adds 9000 rows of 32 bytes
    assert metrics.backward_bytes(100, 8, 4, 4, 10, 10_000, "dense") == 36_240 + 288_000


def test_sparse_backward_has_no_table_term():
    # read dY 512 + read ids 64 + write 16 values rows 512 + write 16 indices 64
    assert metrics.backward_bytes(16, 8, 4, 4, 3, 4, "sparse") == 1152
    assert metrics.backward_bytes(16, 8, 4, 4, 3, 10**9, "sparse") == 1152
    assert metrics.backward_bytes(16, 8, 4, 4, 16, 4, "sparse") == 1152  # distinct ids do not count either


def test_useful_bytes_picks_the_pass_and_the_gradient():
    assert metrics.useful_bytes("forward", **EXAMPLE) == 1088
    assert metrics.useful_bytes("forward", **EXAMPLE, gradient="sparse") == 1088  # forward has no gradient
    assert metrics.useful_bytes("forward_backward", **EXAMPLE) == 896  # dense by default
    assert metrics.useful_bytes("forward_backward", **EXAMPLE, gradient="dense") == 896
    assert metrics.useful_bytes("forward_backward", **EXAMPLE, gradient="sparse") == 1152
    with pytest.raises(ValueError, match="unknown pass 'backward'"):
        metrics.useful_bytes("backward", **EXAMPLE)


def test_forward_backward_is_charged_the_gradient_it_returns_alone():
    """jax.jit drops the forward nobody returns: at V=2 JAX's forward_backward was faster than its
    forward and, charged both, reported 357 % of the copy bandwidth."""
    # N=1000, V=2, D=64, U=2: 256000 (dY) + 4000 (ids) + 1024 (2 rows r+w) + 512 (zero-fill)
    assert metrics.useful_bytes("forward_backward", 1000, 2, 64, 4, 4, 2, "dense") == 261_536
    assert metrics.useful_bytes("forward", 1000, 2, 64, 4, 4, 2) == 516_000


def test_flops_of_the_one_hot_matmul():
    # forward: 2*N*V*D = 2*16*4*8 = 1024; forward_backward adds the dW matmul: 2048
    assert metrics.flops("forward", 16, 4, 8) == 1024
    assert metrics.flops("forward_backward", 16, 4, 8) == 2048
    # 2 * 16384 * 512 * 64 = 2**1 * 2**14 * 2**9 * 2**6 = 2**30
    assert metrics.flops("forward", 16384, 512, 64) == 1_073_741_824
    assert metrics.flops("forward_backward", 16384, 512, 64) == 2_147_483_648


# ---- derived figures ---------------------------------------------------------------------------


def test_derived_forward_gather():
    got = _derived()
    assert got["lookups_per_s"] == pytest.approx(16_000_000, rel=EXACT)  # 16 ids / 1e-6 s
    assert got["gbps"] == pytest.approx(1.088, rel=EXACT)  # 1088 bytes / 1e-6 s = 1.088e9 B/s
    assert got["pct_copy_bw"] == pytest.approx(27.2, rel=EXACT)  # 1.088 / 4.0
    assert got["gflops"] is None  # FLOP/s only for one-hot variants


def test_derived_one_hot_gets_gflops_on_top_of_the_same_bytes():
    forward = _derived(variant="onehot")
    assert forward["gbps"] == pytest.approx(1.088, rel=EXACT)
    assert forward["gflops"] == pytest.approx(1.024, rel=EXACT)  # 1024 FLOP / 1e-6 s
    both = _derived(variant="onehot", pass_="forward_backward")
    assert both["gbps"] == pytest.approx(0.896, rel=EXACT)  # 896 bytes / 1e-6 s
    assert both["gflops"] == pytest.approx(2.048, rel=EXACT)  # 2048 FLOP / 1e-6 s
    assert both["pct_copy_bw"] == pytest.approx(22.4, rel=EXACT)  # 0.896 / 4.0


def test_derived_sparse_gradient_and_another_time():
    got = _derived(pass_="forward_backward", gradient="sparse", median_s=2e-6, copy_gbps=0.576)
    assert got["lookups_per_s"] == pytest.approx(8_000_000, rel=EXACT)  # 16 / 2e-6
    assert got["gbps"] == pytest.approx(0.576, rel=EXACT)  # 1152 / 2e-6 = 5.76e8 B/s
    assert got["pct_copy_bw"] == pytest.approx(100.0, rel=EXACT)


def test_derived_bags_charge_one_output_row_per_bag():
    # 16 ids in R=4 bags of 4: forward 16*(32 + 4) + 4*32 = 704 bytes; one-hot (multi-hot) 2*4*4*8 = 256 FLOP
    bags = _derived(variant="onehot", rows=4)
    assert bags["gbps"] == pytest.approx(0.704, rel=EXACT)
    assert bags["gflops"] == pytest.approx(0.256, rel=EXACT)
    assert bags["lookups_per_s"] == pytest.approx(16_000_000, rel=EXACT)  # still every id looked up
    # dense backward: dY 4*32 + ids 64 + touched 192 + zero-fill 128 = 512 bytes; FLOPs doubled
    both = _derived(variant="onehot", pass_="forward_backward", rows=4)
    assert both["gbps"] == pytest.approx(0.512, rel=EXACT)
    assert both["gflops"] == pytest.approx(0.512, rel=EXACT)


@pytest.mark.parametrize("copy_gbps", [None, 0.0])
def test_no_share_without_a_copy_bandwidth(copy_gbps):
    got = _derived(copy_gbps=copy_gbps)
    assert got["pct_copy_bw"] is None and got["gbps"] == pytest.approx(1.088, rel=EXACT)


@pytest.mark.parametrize("median", [None, 0.0, -0.0, -1e-6])
def test_no_figures_without_a_positive_time(median):
    got = _derived(variant="onehot", median_s=median)
    assert got == {"lookups_per_s": None, "gbps": None, "pct_copy_bw": None, "gflops": None}


def test_the_smallest_positive_time_still_gives_figures():
    got = _derived(median_s=1e-300)  # just above the "no time" boundary
    assert got["lookups_per_s"] == pytest.approx(1.6e301, rel=EXACT)


# ---- the formula text printed in BENCH.md --------------------------------------------------


def _doc_formulas() -> dict[str, str]:
    """pass -> formula text, from the Markdown table rows of BYTES_FORMULA_MD."""
    out = {}
    for line in metrics.BYTES_FORMULA_MD.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("forward"):
            out[cells[0]] = cells[1].split(":")[0]
    return out


def test_the_formulas_printed_in_bench_md_evaluate_to_what_the_code_charges():
    formulas = _doc_formulas()
    assert set(formulas) == {"forward", "forward_backward, dense gradient", "forward_backward, sparse gradient"}
    # distinct primes, so a swapped or missing term changes the value
    N, V, D, s, i, U = 11, 13, 7, 2, 3, 5

    def evaluate(R):
        return {name: eval(text, {"__builtins__": {}}, dict(N=N, R=R, V=V, D=D, s=s, i=i, U=U))
                for name, text in formulas.items()}

    # a plain lookup (R = N), by hand: 11*(28+3) = 341; 154+33+140+182 = 509; 308+66 = 374
    assert evaluate(N) == {"forward": 341, "forward_backward, dense gradient": 509,
                           "forward_backward, sparse gradient": 374}
    assert metrics.useful_bytes("forward", N, V, D, s, i, U) == 341
    assert metrics.useful_bytes("forward_backward", N, V, D, s, i, U, "dense") == 509
    assert metrics.useful_bytes("forward_backward", N, V, D, s, i, U, "sparse") == 374
    # bags (R = 3 output rows), by hand: 11*17+42 = 229; 42+33+140+182 = 397; 42+154+66 = 262
    assert evaluate(3) == {"forward": 229, "forward_backward, dense gradient": 397,
                           "forward_backward, sparse gradient": 262}
    assert [metrics.useful_bytes(p, N, V, D, s, i, U, g, rows=3) for p, g in
            (("forward", "dense"), ("forward_backward", "dense"), ("forward_backward", "sparse"))] == [229, 397, 262]
    one, both = re.search(r"also\s+(\S+)\s+FLOPs per matmul\s+\(forward_backward:\s+([^)]+)\)",
                          metrics.BYTES_FORMULA_MD).groups()
    flops = {k: eval(t, {"__builtins__": {}}, dict(R=N, V=V, D=D)) for k, t in (("one", one), ("both", both))}
    assert flops == {"one": 2002, "both": 4004}  # 2*11*13*7, twice that
    assert (metrics.flops("forward", N, V, D), metrics.flops("forward_backward", N, V, D)) == (2002, 4004)
    assert "GB/s = bytes / median / 1e9" in metrics.BYTES_FORMULA_MD  # what test_derived_* pin


# ---- hot or cold ---------------------------------------------------------------------------


def test_cache_fit_boundaries():
    l2, l3 = 1 << 20, 32 << 20
    assert metrics.cache_fit(4096, l2, l3) == "L2"
    assert metrics.cache_fit(l2, l2, l3) == "L2"  # exactly the L2: fits
    assert metrics.cache_fit(l2 + 1, l2, l3) == "L3"  # one byte more: the L3
    assert metrics.cache_fit(l3, l2, l3) == "L3"
    assert metrics.cache_fit(l3 + 1, l2, l3) == "no"


@pytest.mark.parametrize(("nbytes", "l2", "l3", "expected"), [
    (10, None, None, ""),  # sizes unknown: no claim either way
    (10, 0, 0, ""),  # 0 is "unknown" too
    (10, None, 100, "L3"),
    (100, None, 100, "L3"),
    (101, None, 100, "no"),  # only the L3 known, and too big for it: cold, not unknown
    (100, 100, None, "L2"),
    (101, 100, None, "no"),  # only the L2 known
])
def test_cache_fit_with_one_size_unknown(nbytes, l2, l3, expected):
    assert metrics.cache_fit(nbytes, l2, l3) == expected


def test_touched_bytes_is_distinct_rows_plus_one_calls_output_and_ids():
    # min(V=4, U=3) rows * 32 + output 16*32 = 512 + ids 64: 96 + 576
    assert metrics.touched_bytes(16, 4, 8, 4, 4, unique=3) == 672
    assert metrics.touched_bytes(16, 4, 8, 4, 4, unique=3, batches=0) == 672  # at least one batch
    # 2 batches x 3 distinct = 6 rows, but the table holds 4: 128 + 576
    assert metrics.touched_bytes(16, 4, 8, 4, 4, unique=3, batches=2) == 704
    # U * batches exactly the table (2 x 2 = 4) and one row under it (1 x 3 = 3)
    assert metrics.touched_bytes(16, 4, 8, 4, 4, unique=2, batches=2) == 704
    assert metrics.touched_bytes(16, 4, 8, 4, 4, unique=1, batches=3) == 672
    # int64 ids: 16 more x 4 bytes
    assert metrics.touched_bytes(16, 4, 8, 4, 8, unique=3) == 736


def test_hot_or_cold_follows_the_bytes_a_loop_touches_not_the_table():
    l2, l3 = 1 << 20, 32 << 20
    # 16384 ids over a 128 MiB table (2M x 64 float32): 16320 distinct rows x 256 B = 4177920, output
    # 16384 x 256 = 4194304, ids 65536: 8437760 bytes (~8 MiB), which stays in the 32 MiB L3: hot
    one = metrics.touched_bytes(16384, 2 << 20, 64, 4, 4, unique=16320)
    assert one == 8_437_760
    assert metrics.cache_fit(one, l2, l3) == "L3"
    # 32 batches rotated: 522240 distinct rows x 256 B = 133693440 + 4259840: 137953280 > 32 MiB: cold
    many = metrics.touched_bytes(16384, 2 << 20, 64, 4, 4, 16320, batches=32)
    assert many == 137_953_280 and metrics.cache_fit(many, l2, l3) == "no"
