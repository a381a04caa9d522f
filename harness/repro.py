"""Minimal reproducing snippets for failed checks: paste into Python and see the difference."""

from __future__ import annotations

import numpy as np

from harness.dtypes import dtype_name


def array_literal(array) -> str:
    """A NumPy expression that rebuilds ``array`` exactly (bfloat16 included).

    A string is taken as an expression already (for large generated inputs)."""
    if isinstance(array, str):
        return array
    array = np.asarray(array)
    name = dtype_name(array.dtype)
    if array.size > 8 and np.all(array == array.reshape(-1)[0]):  # one repeated value
        value = array.reshape(-1)[0].astype(np.float64 if array.dtype.kind == "f" else np.int64).item()
        return f"np.full({array.shape!r}, {value!r}).astype(np_dtype({name!r}))"
    if array.dtype.kind == "f" or name == "bfloat16":
        values = array.astype(np.float64).tolist()
        return f"np.array({values!r}).astype(np_dtype({name!r}))"
    return f"np.array({array.tolist()!r}, dtype={name!r})"


def snippet(adapter, call: str, **arrays: np.ndarray) -> str:
    """Code that loads ``adapter`` the way the harness did and runs ``call`` on ``arrays``.

    ``call`` is an expression over the array names, e.g. ``adapter.lookup(W, ids)``."""
    spec = adapter.source or adapter.id
    lines = [
        "import numpy as np",
        "from harness import oracle",
        "from harness.dtypes import np_dtype",
        "from harness.registry import load_adapter",
        f"adapter = load_adapter({spec!r}, device={adapter.device!r}, adapter_id={adapter.id!r})",
    ]
    lines += [f"{name} = {array_literal(value)}" for name, value in arrays.items()]
    lines.append(f"print({call})")
    return "\n".join(lines)
