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


# --- layer options ---------------------------------------------------------------------------
def gradient_with_padding(ids: np.ndarray, upstream: np.ndarray, vocab: int, padding_idx: int) -> np.ndarray:
    """torch's ``padding_idx``: the scatter-add with that row's gradient left at zero
    (a negative ``padding_idx`` counts from the end, as torch normalises it)."""
    grad = gradient(ids, upstream, vocab)
    grad[padding_idx % vocab] = 0.0
    return grad


def gradient_scaled_by_freq(ids: np.ndarray, upstream: np.ndarray, vocab: int) -> np.ndarray:
    """torch's ``scale_grad_by_freq``: each row's scatter-add divided by how often its id occurs
    in the batch."""
    grad = gradient(ids, upstream, vocab)
    counts = hit_counts(ids, vocab)
    hit = counts > 0
    grad[hit] /= counts[hit, None]
    return grad


# torch.embedding_renorm_ divides by (norm + 1e-7) so that a zero row stays finite.
RENORM_EPS = 1e-7


def renormalised(weights: np.ndarray, ids: np.ndarray, max_norm: float, norm_type: float) -> np.ndarray:
    """torch's ``max_norm``: the table after a forward call, in float64: every row the ids look up
    whose ``norm_type``-norm exceeds ``max_norm`` scaled by max_norm / (norm + 1e-7); every
    other row unchanged."""
    table = np.asarray(weights, dtype=np.float64).copy()
    rows = np.unique(_check_ids(ids, table.shape[0]).reshape(-1))
    norms = np.linalg.norm(table[rows], ord=norm_type, axis=1)
    over = norms > max_norm
    table[rows[over]] *= (max_norm / (norms[over] + RENORM_EPS))[:, None]
    return table


def mask_zero(ids: np.ndarray) -> np.ndarray:
    """Keras' ``mask_zero``: True where the id is not 0 (0 is the padding id)."""
    return np.asarray(ids) != 0
