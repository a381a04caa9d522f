"""Tolerances derived from the dtype and the number of accumulated terms, never tuned.

Forward: a gather copies rows, so it must be bit-exact. A one-hot matmul computes
``1*W[i,j] + sum(0*W[k,j])``: every term but one is an exact zero, so it is exact too for
finite normal W when the matmul runs in the weight dtype; with TF32 or bfloat16 matmul
inputs, W is rounded once to that format: |err| <= u_fmt * |W| (round to nearest).

Gradient: each element of row i is a sum of k_i upstream terms (k_i = how often id i occurs).
Summing k terms in a format with unit roundoff u, in any order, errs by at most
gamma_{k-1} * sum|terms| with gamma_n = n*u / (1 - n*u) (Higham, Accuracy and Stability of
Numerical Algorithms, 2nd ed., §4.2), plus one final rounding to the weight dtype, u*|exact|.
Rows never indexed have k=0, so their tolerance is exactly zero.
"""

from __future__ import annotations

import numpy as np

from harness.dtypes import unit_roundoff

MATMUL_UNIT_ROUNDOFF = {"tf32": 2.0**-11, "bfloat16": 2.0**-8}


def gamma(n: np.ndarray, u: float) -> np.ndarray:
    """gamma_n = n*u / (1 - n*u); the bound holds for n*u < 1 only, beyond it nothing is
    bounded (inf): the strategies keep gradient cases inside (see ``max_hits``)."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(n * u < 1, n * u / np.maximum(1.0 - n * u, np.finfo(np.float64).tiny), np.inf)


def max_hits(dtype: str) -> int:
    """The most duplicates of one id a gradient case may hold in ``dtype``: (k-1)*u <= 1/2,
    where gamma_(k-1) <= 2(k-1)u is still a meaningful bound. More duplicates than that is
    the low-precision accumulation check's ground."""
    return int(0.5 / unit_roundoff(dtype)) + 1


def forward_tolerance(expected: np.ndarray, matmul_precision: str, dtype: str) -> np.ndarray | None:
    """Absolute tolerance per element, or None when the result must be bit-exact."""
    u = MATMUL_UNIT_ROUNDOFF.get(matmul_precision)
    if u is None or u <= unit_roundoff(dtype):
        return None
    return u * np.abs(expected.astype(np.float64))


def gradient_tolerance(exact: np.ndarray, counts: np.ndarray, abs_sums: np.ndarray, dtype: str) -> np.ndarray:
    """Per-element bound for a (vocab, dim) gradient accumulated in ``dtype``."""
    u = unit_roundoff(dtype)
    k = np.maximum(counts - 1, 0)[:, None]
    return u * np.abs(exact) + gamma(k, u) * abs_sums
