import numpy as np
import pytest

from harness import oracle


def test_forward_copies_rows_with_shape_and_dtype():
    weights = np.arange(12, dtype=np.float32).reshape(4, 3)
    ids = np.array([[3, 0], [3, 1]])
    out = oracle.forward(weights, ids)
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    assert np.array_equal(out[0, 0], weights[3])


def test_gradient_accumulates_duplicates_where_buffered_assignment_does_not():
    ids = np.array([1, 1, 2, 1])
    up = np.ones((4, 2), dtype=np.float32)
    grad = oracle.gradient(ids, up, vocab=4)
    assert grad.dtype == np.float64
    assert grad[:, 0].tolist() == [0.0, 3.0, 1.0, 0.0]
    buffered = np.zeros((4, 2))
    buffered[ids] += up  # the bug the oracle avoids
    assert buffered[1, 0] == 1.0


def test_counts_and_abs_sums():
    ids = np.array([[0, 2], [2, 2]])
    up = -np.ones((2, 2, 1))
    assert oracle.hit_counts(ids, 3).tolist() == [1, 0, 3]
    assert oracle.abs_sums(ids, up, 3)[:, 0].tolist() == [1.0, 0.0, 3.0]


@pytest.mark.parametrize("ids", [np.array([4]), np.array([-1]), np.array([0.5])])
def test_oracle_rejects_ids_outside_its_domain(ids):
    with pytest.raises((ValueError, TypeError)):
        oracle.forward(np.zeros((4, 2)), ids)
