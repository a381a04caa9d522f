"""Weight and index dtypes by name, including bfloat16 (NumPy has none; ml_dtypes adds it)."""

from __future__ import annotations

import ml_dtypes
import numpy as np

WEIGHT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# Every integer dtype a caller might hand in, plus float32 ids (Keras casts them silently).
CANDIDATE_INDEX_DTYPES = (
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32",
)


def np_dtype(name: str) -> np.dtype:
    """NumPy dtype for a dtype name; bfloat16 comes from ml_dtypes."""
    if name == "bfloat16":
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def dtype_name(dtype) -> str:
    return "bfloat16" if np.dtype(dtype) == np.dtype(ml_dtypes.bfloat16) else np.dtype(dtype).name


def unit_roundoff(name: str) -> float:
    """u = 2**-p for a p-bit significand (round to nearest): the relative error of one rounding."""
    # tf32: the 10+1-bit significand tensor cores round float32 matmul inputs to.
    significand_bits = {"float16": 11, "bfloat16": 8, "tf32": 11, "float32": 24, "float64": 53}[name]
    return 2.0 ** -significand_bits


def smallest_normal(name: str) -> float:
    return float(ml_dtypes.finfo(np_dtype(name)).smallest_normal)


def largest_finite(name: str) -> float:
    return float(ml_dtypes.finfo(np_dtype(name)).max)
