"""Memory layouts of id and weight arrays: the same values, C, Fortran, transposed or strided.

Implementations that read raw buffers, assume C order or ignore strides return the wrong
rows for such arrays, so the strategies hand them in; the repro snippets rebuild the exact
layout (``literal``), and the checks keep same-layout pristine copies (``copy``).
"""

from __future__ import annotations

import numpy as np

LAYOUTS = ("C", "F", "transposed", "strided")


def _axes_by_stride(array: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argsort([-abs(s) for s in array.strides], kind="stable"))


def kind(array: np.ndarray) -> tuple[str, tuple[int, ...]]:
    """("C" | "F" | "transposed" | "strided", the axis order in memory for "transposed")."""
    if array.flags.c_contiguous:
        return "C", ()
    if array.flags.f_contiguous:
        return "F", ()
    order = _axes_by_stride(array)
    if array.transpose(order).flags.c_contiguous:
        return "transposed", order
    return "strided", ()


def arrange(values: np.ndarray, layout: str) -> np.ndarray:
    """``values`` (any layout) laid out as ``layout``: same shape, dtype and elements."""
    values = np.asarray(values, order="C")  # (ascontiguousarray would turn a 0-d array into 1-d)
    if layout == "F":
        return np.asfortranarray(values)
    if layout == "transposed" and values.ndim >= 2:
        # Middle axis outermost (rank 3: 1, 0, 2); for rank 2 this is Fortran order.
        order = (1, 0, *range(2, values.ndim)) if values.ndim > 2 else (1, 0)
        return np.ascontiguousarray(values.transpose(order)).transpose(np.argsort(order))
    if layout == "strided" and values.ndim >= 1:
        return np.repeat(values, 2, axis=-1)[..., ::2]
    return values.copy()


def copy(array: np.ndarray) -> np.ndarray:
    """A copy with the same values and the same layout (a pristine twin of an input)."""
    layout, order = kind(array)
    if layout == "transposed":
        return np.ascontiguousarray(array.transpose(order)).transpose(np.argsort(order))
    return arrange(array, layout)


def literal(expression: str, array: np.ndarray) -> str:
    """Wrap ``expression`` (a C-ordered array) so that it evaluates in ``array``'s layout."""
    layout, order = kind(array)
    if layout == "F":
        return f"np.asfortranarray({expression})"
    if layout == "transposed":
        inverse = tuple(int(i) for i in np.argsort(order))
        return f"np.ascontiguousarray({expression}.transpose({order})).transpose({inverse})"
    if layout == "strided":
        return f"np.repeat({expression}, 2, axis=-1)[..., ::2]"
    return expression
