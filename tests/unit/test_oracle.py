"""The NumPy reference (harness.oracle), against values written out by hand."""

import numpy as np
import pytest

from harness import oracle

W = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0], [9.0, 10.0, 11.0]], dtype=np.float32)


def test_forward_copies_rows_with_shape_and_dtype():
    out = oracle.forward(W, np.array([[3, 0], [3, 1]]))
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    assert out.tolist() == [[[9.0, 10.0, 11.0], [0.0, 1.0, 2.0]], [[9.0, 10.0, 11.0], [3.0, 4.0, 5.0]]]


def test_forward_of_a_scalar_id_and_of_no_ids():
    assert oracle.forward(W, np.array(2)).tolist() == [6.0, 7.0, 8.0]
    empty = oracle.forward(W, np.zeros((0, 2), dtype=np.int32))
    assert empty.shape == (0, 2, 3) and empty.dtype == np.float32


def test_forward_keeps_the_bits_of_each_row():
    weights = np.array([[-0.0, np.nan], [np.inf, 1e-45]], dtype=np.float32)
    out = oracle.forward(weights, np.array([1, 0]))
    assert out.view(np.uint32).tolist() == weights[[1, 0]].view(np.uint32).tolist()


def test_gradient_adds_every_duplicate():
    # id 1 appears three times: 1 + 10 + 100; id 2 once; ids 0 and 3 never
    ids = np.array([1, 1, 2, 1])
    up = np.array([[1.0, -1.0], [10.0, -10.0], [5.0, 0.5], [100.0, -100.0]], dtype=np.float32)
    grad = oracle.gradient(ids, up, vocab=4)
    assert grad.dtype == np.float64 and grad.shape == (4, 2)
    assert grad.tolist() == [[0.0, 0.0], [111.0, -111.0], [5.0, 0.5], [0.0, 0.0]]


def test_gradient_accumulates_in_float64_whatever_the_upstream_dtype():
    # float16 holds 2048 but not 2049: summed in float16, 2048 + 1 would stay 2048
    up = np.array([[2048.0], [1.0]], dtype=np.float16)
    assert oracle.gradient(np.array([0, 0]), up, vocab=1).tolist() == [[2049.0]]


def test_gradient_of_nd_ids_flattens_positions():
    ids = np.array([[0, 2], [2, 2]])
    up = np.array([[[1.0], [2.0]], [[4.0], [8.0]]])
    assert oracle.gradient(ids, up, vocab=3).tolist() == [[1.0], [0.0], [14.0]]


def test_counts_and_abs_sums():
    ids = np.array([[0, 2], [2, 2]])
    up = np.array([[[-1.0], [2.0]], [[-4.0], [8.0]]])
    assert oracle.hit_counts(ids, 3).tolist() == [1, 0, 3]
    assert oracle.hit_counts(ids, 5).tolist() == [1, 0, 3, 0, 0]  # one count per row of the table
    assert oracle.abs_sums(ids, up, 3)[:, 0].tolist() == [1.0, 0.0, 14.0]  # |2| + |-4| + |8|
    assert oracle.gradient(ids, up, 3)[:, 0].tolist() == [-1.0, 0.0, 6.0]  # the signed sum, for contrast


@pytest.mark.parametrize("ids", [np.array([0, 3]), np.array([3], dtype=np.uint8), np.array([], dtype=np.int64)])
def test_oracle_accepts_ids_from_0_to_vocab_minus_1(ids):
    assert oracle.forward(W, ids).shape == (ids.size, 3)
    assert oracle.hit_counts(ids, 4).sum() == ids.size


@pytest.mark.parametrize(("ids", "error", "message"), [
    (np.array([4]), ValueError, r"\[0, 4\); got 4..4"),  # vocab itself: one beyond the last row
    (np.array([-1, 2]), ValueError, r"\[0, 4\); got -1..2"),  # one below the first
    (np.array([0.0]), TypeError, "integer dtype, got float64"),
    (np.array([True]), TypeError, "integer dtype, got bool"),
])
def test_oracle_rejects_ids_outside_its_domain(ids, error, message):
    with pytest.raises(error, match=message):
        oracle.forward(W, ids)
    with pytest.raises(error, match=message):
        oracle.gradient(ids, np.ones((ids.size, 3)), vocab=4)
    with pytest.raises(error, match=message):
        oracle.hit_counts(ids, 4)
