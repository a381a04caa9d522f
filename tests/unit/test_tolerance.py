"""Tolerances derived from the dtype and the number of accumulated terms (harness.tolerance), and
where the checks compare against them: exact at the bound passes, a hair beyond fails.

Unit roundoffs by hand: u = 2**-p for a p-bit significand: float16 and tf32 p = 11, bfloat16 p = 8,
float32 p = 24, float64 p = 53. gamma_n = n*u / (1 - n*u) (Higham §4.2)."""

import math
import types

import numpy as np
import pytest

from harness import checks
from harness.dtypes import unit_roundoff
from harness.tolerance import MATMUL_UNIT_ROUNDOFF, forward_tolerance, gamma, gradient_tolerance, max_hits


@pytest.mark.parametrize(("name", "u"), [("float16", 2.0**-11), ("tf32", 2.0**-11), ("bfloat16", 2.0**-8),
                                         ("float32", 2.0**-24), ("float64", 2.0**-53)])
def test_unit_roundoff_matches_significand_bits(name, u):
    assert unit_roundoff(name) == u


def test_matmul_formats():
    assert MATMUL_UNIT_ROUNDOFF == {"tf32": 2.0**-11, "bfloat16": 2.0**-8}


# ---- gamma -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "u", "expected"), [
    (0, 0.25, 0.0),  # no additions, no error
    (1, 0.5, 1.0),  # 0.5 / 0.5
    (2, 0.25, 1.0),  # 0.5 / 0.5
    (3, 0.25, 3.0),  # 0.75 / 0.25: the last n with n*u < 1
    (4, 0.25, math.inf),  # n*u == 1: no bound
    (5, 0.25, math.inf),
])
def test_gamma(n, u, expected):
    assert gamma(np.array(n), u) == expected


def test_gamma_elementwise():
    assert gamma(np.array([[0], [2], [3], [4]]), 0.25).tolist() == [[0.0], [1.0], [3.0], [math.inf]]


# ---- how many duplicates a gradient case may hold ------------------------------------------------


@pytest.mark.parametrize(("dtype", "hits"), [
    ("bfloat16", 129),  # (k-1) * 2**-8 <= 1/2: k - 1 = 128
    ("float16", 1025),  # k - 1 = 1024
    ("float32", 8_388_609),  # k - 1 = 2**23
])
def test_max_hits(dtype, hits):
    assert max_hits(dtype) == hits


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_max_hits_is_the_last_count_whose_bound_is_at_most_twice_the_rounding(dtype):
    u = {"bfloat16": 2.0**-8, "float16": 2.0**-11, "float32": 2.0**-24}[dtype]
    k = max_hits(dtype)
    assert (k - 1) * u == 0.5  # at the boundary: gamma_(k-1) = 0.5 / 0.5 = 1 = 2 (k-1) u
    assert gamma(np.array(k - 1), u) == 1.0
    assert k * u > 0.5  # one more duplicate is beyond it


# ---- forward -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("precision", "dtype", "u"), [
    ("float32", "float32", None),  # the matmul runs in the weight dtype: bit-exact
    ("highest", "float32", None),
    ("tf32", "float16", None),  # both round to 11 bits: tf32 is not coarser than float16
    ("bfloat16", "bfloat16", None),
    ("tf32", "bfloat16", None),  # tf32 is finer than bfloat16
    ("tf32", "float32", 2.0**-11),
    ("tf32", "float64", 2.0**-11),
    ("bfloat16", "float16", 2.0**-8),
    ("bfloat16", "float32", 2.0**-8),
])
def test_forward_exact_unless_the_matmul_rounds_coarser_than_the_dtype(precision, dtype, u):
    w = np.array([1.0, -3.0, 0.0], dtype=np.float32)
    tol = forward_tolerance(w, precision, dtype)
    if u is None:
        assert tol is None
    else:
        assert tol.dtype == np.float64 and tol.tolist() == [u, 3 * u, 0.0]


# ---- gradient ----------------------------------------------------------------------------------


def test_untouched_rows_get_zero_tolerance_and_single_hits_one_rounding():
    exact = np.array([[0.0], [3.0]])
    tol = gradient_tolerance(exact, counts=np.array([0, 1]), abs_sums=np.array([[0.0], [3.0]]), dtype="float16")
    assert tol.tolist() == [[0.0], [3 * 2.0**-11]]  # one rounding of 3.0 to float16, no summation error


def test_gradient_tolerance_by_hand_in_bfloat16():
    # u = 1/256. Rows hit 0, 1, 2 and 4 times; k - 1 = 0, 0, 1, 3 additions:
    #   row 0: 0 (never indexed)            row 1: u * |-256| = 1
    #   row 2: u * 510 + gamma_1 * 510 = 510/256 + (1/255) * 510 = 1.9921875 + 2 = 3.9921875
    #   row 3: u * 256 + gamma_3 * 253 = 1 + (3/253) * 253 = 4
    exact = np.array([[0.0, 0.0], [-256.0, 256.0], [510.0, -510.0], [256.0, 256.0]])
    abs_sums = np.array([[0.0, 0.0], [256.0, 256.0], [510.0, 510.0], [253.0, 253.0]])
    tol = gradient_tolerance(exact, np.array([0, 1, 2, 4]), abs_sums, "bfloat16")
    assert tol.shape == (4, 2)
    np.testing.assert_allclose(tol, [[0.0, 0.0], [1.0, 1.0], [3.9921875] * 2, [4.0, 4.0]], rtol=1e-12, atol=0)


def test_gradient_tolerance_grows_with_duplicates_in_float32():
    # exact 10, sum |terms| 10: 2 hits: 10u + 10 * u/(1-u) ~ 20u; 50 hits: 10u + 10 * 49u/(1-49u) ~ 500u
    u = 2.0**-24
    few = gradient_tolerance(np.array([[10.0]]), np.array([2]), np.array([[10.0]]), "float32")[0, 0]
    many = gradient_tolerance(np.array([[10.0]]), np.array([50]), np.array([[10.0]]), "float32")[0, 0]
    assert few == pytest.approx(20 * u, rel=1e-6) and many == pytest.approx(500 * u, rel=1e-5)


# ---- where the checks apply them: at the bound passes, beyond fails ------------------------------


def _adapter(matmul_precision="float32"):
    return types.SimpleNamespace(id="fake", source="fake", device="cpu",
                                 declared=types.SimpleNamespace(matmul_precision=matmul_precision))


def test_forward_error_exactly_at_the_tf32_bound_passes_one_ulp_beyond_fails():
    want = np.array([[1.0, -2.0]], dtype=np.float32)
    at = np.array([[1.0 + 2.0**-11, -2.0 - 2.0**-10]], dtype=np.float32)  # |err| = 2**-11 * |W|
    checks._expect_rows(_adapter("tf32"), at, want, {})
    beyond = at.copy()
    beyond[0, 0] = np.nextafter(beyond[0, 0], np.float32(2))
    with pytest.raises(checks.ConformanceFailure, match=r"1 output values differ .*first at \(0, 0\)"):
        checks._expect_rows(_adapter("tf32"), beyond, want, {})


def test_forward_in_the_weight_dtype_must_be_bit_exact():
    want = np.array([[1.0, 0.0]], dtype=np.float32)
    checks._expect_rows(_adapter(), want.copy(), want, {})
    with pytest.raises(checks.ConformanceFailure, match="bit-exact"):
        checks._expect_rows(_adapter(), np.array([[1.0, -0.0]], dtype=np.float32), want, {})  # -0.0 != 0.0


def test_gradient_untouched_row_must_be_exactly_zero():
    weights = np.zeros((2, 1), dtype=np.float32)
    ids, up = np.array([1]), np.array([[1.5]], dtype=np.float32)
    exact = np.array([[0.0], [1.5]], dtype=np.float32)
    checks._expect_gradient(_adapter(), exact, weights, ids, up, {}, "float32")  # error 0 = tolerance 0
    checks._expect_gradient(_adapter(), np.array([[-0.0], [1.5]], dtype=np.float32), weights, ids, up, {},
                            "float32")  # |-0.0 - 0| = 0: still at the bound
    tiny = np.array([[np.float32(1e-45)], [1.5]], dtype=np.float32)  # the smallest subnormal beyond it
    with pytest.raises(checks.ConformanceFailure, match="an untouched row is not zero at row 0 col 0"):
        checks._expect_gradient(_adapter(), tiny, weights, ids, up, {}, "float32")


def test_gradient_of_duplicates_within_the_bound_passes_beyond_fails():
    # float16, id 0 twice with upstream 1 + 2**-10 and 2**-11 (float32): exact 1 + 3 * 2**-11, which
    # float16 (spacing 2**-10 at 1) cannot hold. Bound: u*|exact| + gamma_1 * sum|up| ~ 2**-11 * 2.
    # Both neighbours 1 + 2**-10 and 1 + 2**-9 are 2**-11 away: inside. 1 + 3 * 2**-10 is 3 * 2**-11 away.
    weights, ids = np.zeros((1, 1), dtype=np.float16), np.array([0, 0])
    up = np.array([[1.0 + 2.0**-10], [2.0**-11]], dtype=np.float32)
    for inside in (1.0 + 2.0**-10, 1.0 + 2.0**-9):
        checks._expect_gradient(_adapter(), np.array([[inside]], dtype=np.float16), weights, ids, up, {}, "float16")
    with pytest.raises(checks.ConformanceFailure, match="differs from the scatter-add at row 0 col 0"):
        checks._expect_gradient(_adapter(), np.array([[1.0 + 3 * 2.0**-10]], dtype=np.float16), weights, ids, up,
                                {}, "float16")
