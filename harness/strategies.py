"""Hypothesis strategies for lookup cases: tables, id arrays of any rank, upstream gradients.

Tables hold finite *normal* values and +0.0 only: NaN/Inf, -0.0 and subnormals have their
own deterministic checks, because there one-hot @ W is expected to differ from the gather.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness.dtypes import largest_finite, np_dtype, smallest_normal

# Float widths Hypothesis can draw exactly; bfloat16 is drawn as float32, then rounded.
_WIDTH = {"float16": 16, "bfloat16": 32, "float32": 32, "float64": 64}


@dataclass
class Case:
    weights: np.ndarray
    ids: np.ndarray
    upstream: np.ndarray | None = None

    @property
    def vocab(self) -> int:
        return self.weights.shape[0]


def _values(dtype: str, magnitude: tuple[float, float]):
    width = _WIDTH[dtype]
    # Bounds must be exactly representable at the drawing width.
    lo, hi = (float(np.asarray(m).astype(f"float{width}")) for m in magnitude)
    return st.one_of(
        st.just(0.0),
        st.floats(lo, hi, width=width),
        st.floats(-hi, -lo, width=width),
    )


def table_values(dtype: str):
    """Normal values spanning most of the dtype's range (products with 0 stay exact)."""
    lo = smallest_normal(dtype) * 4
    hi = min(largest_finite(dtype) / 4, 1e30)
    return _values(dtype, (lo, hi))


def upstream_values(dtype: str):
    """Moderate values, so sums of many duplicates cannot overflow float16."""
    return _values(dtype, (2.0**-6, 8.0))


def _array(draw, dtype: str, shape, elements) -> np.ndarray:
    raw = draw(arrays(np.float16 if dtype == "float16" else np.float64 if dtype == "float64"
                      else np.float32, shape, elements=elements))
    return raw.astype(np_dtype(dtype))


@st.composite
def id_arrays(draw, vocab: int, max_rank: int = 3, max_side: int = 5, index_dtypes=("int64",)):
    rank = draw(st.integers(0, max_rank))
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=rank, max_size=rank)))
    index_dtype = draw(st.sampled_from(index_dtypes))
    ids = draw(arrays(np.int64, shape, elements=st.integers(0, vocab - 1)))
    return ids.astype(index_dtype)


@st.composite
def lookup_cases(draw, dtype: str, index_dtypes, max_vocab: int = 24, max_dim: int = 5,
                 with_upstream: bool = False, max_side: int = 5):
    """A table and ids in range; with_upstream adds an upstream gradient for the output.

    Gradient cases use a small vocabulary so duplicates (the interesting part) are common.
    A one-row table is the deterministic check ``vocab_of_one``: Flax special-cases it and
    crashes on a 0-d id, which must not mask the general property."""
    vocab = draw(st.integers(2, max_vocab))
    dim = draw(st.integers(1, max_dim))
    weights = _array(draw, dtype, (vocab, dim), table_values(dtype))
    ids = draw(id_arrays(vocab, max_side=max_side, index_dtypes=index_dtypes))
    upstream = None
    if with_upstream:
        upstream = _array(draw, dtype, ids.shape + (dim,), upstream_values(dtype))
    return Case(weights, ids, upstream)
