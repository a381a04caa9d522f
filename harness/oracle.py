"""The NumPy reference semantics every adapter is checked against.

forward:  out[...] = W[idx[...]]
gradient: dW[i] = sum of upstream[p] over every position p with idx[p] == i, in float64.
``dW[idx] += up`` would be wrong: buffered fancy assignment keeps one update per duplicate id;
``np.add.at`` is unbuffered and accumulates every one.
"""

from __future__ import annotations

import numpy as np


def _check_ids(ids: np.ndarray, vocab: int) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"ids must have an integer dtype, got {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab):
        raise ValueError(f"oracle ids must lie in [0, {vocab}); got {ids.min()}..{ids.max()}")
    return ids.astype(np.int64)


def forward(weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Rows of ``weights`` at ``ids``: shape ids.shape + (dim,), dtype of ``weights``, exact copies."""
    ids = _check_ids(ids, weights.shape[0])
    return np.take(weights, ids, axis=0)


def gradient(ids: np.ndarray, upstream: np.ndarray, vocab: int) -> np.ndarray:
    """d(sum(forward * upstream))/dW as a float64 (vocab, dim) matrix (scatter-add)."""
    ids = _check_ids(ids, vocab)
    dim = upstream.shape[-1]
    grad = np.zeros((vocab, dim), dtype=np.float64)
    np.add.at(grad, ids.reshape(-1), np.asarray(upstream, dtype=np.float64).reshape(-1, dim))
    return grad


def hit_counts(ids: np.ndarray, vocab: int) -> np.ndarray:
    """How many upstream terms each row accumulates (k per row)."""
    return np.bincount(_check_ids(ids, vocab).reshape(-1), minlength=vocab)


def abs_sums(ids: np.ndarray, upstream: np.ndarray, vocab: int) -> np.ndarray:
    """Per element sum of |upstream| terms, the scale of the summation error bound."""
    return gradient(ids, np.abs(np.asarray(upstream, dtype=np.float64)), vocab)
