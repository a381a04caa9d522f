"""Minimal reproducing snippets for failed checks: paste into Python and see the difference.

Every array is rebuilt exactly: its values (bfloat16, -0.0 and NaN included), its shape
(empty arrays too) and its memory layout (Fortran, transposed, strided), because layout
bugs only show with the layout that exposed them.
"""

from __future__ import annotations

import numpy as np

from harness import layouts
from harness.dtypes import dtype_name

FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64")


def _values_literal(array: np.ndarray) -> str:
    """A C-ordered expression for ``array``'s values, shape and dtype."""
    name = dtype_name(array.dtype)
    is_float = name in FLOAT_NAMES
    if array.size == 0:
        return f"np.zeros({array.shape!r}, dtype=np_dtype({name!r}))"
    flat = np.ascontiguousarray(array).reshape(-1)
    if array.size > 8 and np.array_equal(flat.view(f"u{array.dtype.itemsize}"),
                                         np.full_like(flat, flat[0]).view(f"u{array.dtype.itemsize}")):
        value = flat[0].astype(np.float64 if is_float else np.int64).item()
        return f"np.full({array.shape!r}, {_number(value)}).astype(np_dtype({name!r}))"
    if is_float:
        values = [_number(v) for v in np.ascontiguousarray(array).astype(np.float64).reshape(-1).tolist()]
        return f"np.array([{', '.join(values)}]).reshape({array.shape!r}).astype(np_dtype({name!r}))"
    return f"np.array({np.asarray(array, order='C').tolist()!r}, dtype={name!r})"


def _number(value: float) -> str:
    """A float literal that evaluates back to the same float64 (nan, inf and -0.0 too)."""
    if isinstance(value, float) and not np.isfinite(value):
        return "float('nan')" if np.isnan(value) else ("float('inf')" if value > 0 else "-float('inf')")
    return repr(value)


def array_literal(array) -> str:
    """A NumPy expression that rebuilds ``array`` exactly, layout included.

    A string is taken as an expression already (for large generated inputs)."""
    if isinstance(array, str):
        return array
    array = np.asarray(array)
    return layouts.literal(_values_literal(array), array)


def snippet(adapter, call: str, expected: str | None = None, **arrays) -> str:
    """Code that loads ``adapter`` the way the harness did and runs ``call`` on ``arrays``.

    ``call`` is an expression over the array names, e.g. ``adapter.lookup(W, ids)``;
    ``expected`` the oracle's answer, computed first, from the inputs as they were before the
    adapter saw them (an adapter may change its inputs)."""
    spec = adapter.source or adapter.id
    lines = [
        "import numpy as np",
        "from harness import oracle",
        "from harness.dtypes import np_dtype",
        "from harness.registry import load_adapter",
        "from harness.strategies import seeded_ids, seeded_values",
        f"adapter = load_adapter({spec!r}, device={adapter.device!r}, adapter_id={adapter.id!r})",
    ]
    if any(isinstance(value, str) and "Bags(" in value for value in arrays.values()):
        lines.insert(2, "from harness.bags import Bags")  # a bag check's snippet
    lines += [f"{name} = {array_literal(value)}" for name, value in arrays.items()]
    if expected:
        lines.append(f"expected = {expected}")
    lines.append(f"print({call})")
    if expected:
        lines.append("print(expected)")
    return "\n".join(lines)
