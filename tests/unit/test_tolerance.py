import numpy as np

from harness.dtypes import unit_roundoff
from harness.tolerance import forward_tolerance, gamma, gradient_tolerance


def test_unit_roundoff_matches_significand_bits():
    assert unit_roundoff("float32") == 2.0**-24
    assert unit_roundoff("bfloat16") == 2.0**-8


def test_untouched_rows_get_zero_tolerance_and_single_hits_one_rounding():
    exact = np.array([[0.0], [3.0]])
    tol = gradient_tolerance(exact, counts=np.array([0, 1]), abs_sums=np.array([[0.0], [3.0]]), dtype="float16")
    assert tol[0, 0] == 0.0
    assert tol[1, 0] == unit_roundoff("float16") * 3.0


def test_tolerance_grows_with_duplicates():
    exact = np.array([[10.0]])
    few = gradient_tolerance(exact, np.array([2]), np.array([[10.0]]), "float32")
    many = gradient_tolerance(exact, np.array([50]), np.array([[10.0]]), "float32")
    assert many > few
    assert gamma(np.array(1.0), 0.5) == 1.0


def test_forward_exact_unless_matmul_rounds_below_the_dtype():
    w = np.array([1.0, -3.0])
    assert forward_tolerance(w, "float32", "float32") is None
    assert forward_tolerance(w, "tf32", "float16") is None  # tf32 is finer than float16
    assert np.allclose(forward_tolerance(w, "tf32", "float32"), 2.0**-11 * np.abs(w))
