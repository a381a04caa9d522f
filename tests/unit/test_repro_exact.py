"""Repro snippets run as they are printed, in-process: the literal of each kind of array
rebuilds it exactly, and the whole snippet executes and prints what the adapter did."""

import contextlib
import io

import ml_dtypes
import numpy as np
import pytest
from broken_adapters import Faithful

from harness import repro
from harness.dtypes import np_dtype


def _eval(literal: str):
    return eval(literal, {"np": np, "np_dtype": np_dtype})  # noqa: S307 - our own generated code


@pytest.mark.parametrize("array", [
    np.full((3, 3), -0.0, dtype=np.float32),                  # 9 equal values: the compact np.full form
    np.full(9, float("-inf"), dtype=np.float64),
    np.full(9, float("inf"), dtype=np.float16),
    np.full(9, 0.5, dtype=ml_dtypes.bfloat16),
    np.full(9, 7, dtype=np.int16),
    np.array([1.5, float("nan"), float("inf"), float("-inf"), -0.0, 1e-45], dtype=np.float32).reshape(2, 3),
    np.arange(8, dtype=np.float32),                           # exactly 8 values: listed, not compacted
    np.asfortranarray(np.arange(12, dtype=np.int32).reshape(3, 4)),
    np.arange(6, dtype=np.uint8)[::2],
    np.zeros((0, 3), dtype=np.float32),
])
def test_a_literal_rebuilds_values_shape_dtype_and_layout(array):
    literal = repro.array_literal(array)
    again = _eval(literal)
    assert again.shape == array.shape and again.dtype == array.dtype
    bits = (np.ascontiguousarray(again).view(np.uint8), np.ascontiguousarray(array).view(np.uint8))
    assert np.array_equal(*bits)  # bit for bit: -0.0, NaN and subnormals too
    assert again.flags.f_contiguous == array.flags.f_contiguous and again.strides == array.strides


def test_the_compact_form_is_for_more_than_eight_equal_values_only():
    assert repro._values_literal(np.full(9, 2.0, dtype=np.float32)) == \
        "np.full((9,), 2.0).astype(np_dtype('float32'))"
    assert repro._values_literal(np.full(8, 2.0, dtype=np.float32)) == \
        "np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]).reshape((8,)).astype(np_dtype('float32'))"
    nine = np.full(9, 3, dtype=np.int64)
    nine[1] = 4  # equal first values are not enough: every value must be the first one
    assert repro._values_literal(nine) == "np.array([3, 4, 3, 3, 3, 3, 3, 3, 3], dtype='int64')"
    assert repro._values_literal(np.full(9, 3, dtype=np.int64)) == "np.full((9,), 3).astype(np_dtype('int64'))"
    big = np.full(9, 2**40 + 1, dtype=np.int64)  # an integer stays an integer, not a rounded float
    assert repro._values_literal(big) == "np.full((9,), 1099511627777).astype(np_dtype('int64'))"


def test_numbers_that_repr_cannot_write_back():
    assert [repro._number(v) for v in (float("nan"), float("inf"), float("-inf"), -0.0, 0.1)] == [
        "float('nan')", "float('inf')", "-float('inf')", "-0.0", "0.1"]


def test_a_snippet_runs_as_printed_and_prints_the_call_then_the_expectation():
    adapter = Faithful()
    adapter.source = "broken_adapters:make_control"
    code = repro.snippet(adapter, "adapter.lookup(W, ids)", "oracle.forward(W, ids)",
                         W=np.arange(6, dtype=np.float32).reshape(3, 2), ids=np.array([2, 0], dtype=np.int32))
    lines = code.splitlines()
    assert lines[:5] == ["import numpy as np", "from harness import oracle", "from harness.dtypes import np_dtype",
                         "from harness.registry import load_adapter",
                         "from harness.strategies import seeded_ids, seeded_values"]
    assert lines[5] == "adapter = load_adapter('broken_adapters:make_control', device='cpu', adapter_id='faithful')"
    assert lines[-3:] == ["expected = oracle.forward(W, ids)", "print(adapter.lookup(W, ids))", "print(expected)"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, {})  # noqa: S102 - the generated snippet is the thing under test
    assert printed.getvalue() == "[[4. 5.]\n [0. 1.]]\n[[4. 5.]\n [0. 1.]]\n"


def test_an_adapter_without_a_source_is_loaded_by_its_id_and_without_expectation_prints_once():
    adapter = Faithful()
    adapter.id, adapter.source = "numpy-gather", ""
    code = repro.snippet(adapter, "adapter.lookup(W, ids)", W=np.ones((2, 1), np.float32), ids=np.array([1]))
    assert "adapter = load_adapter('numpy-gather', device='cpu', adapter_id='numpy-gather')" in code
    assert code.endswith("print(adapter.lookup(W, ids))") and "expected" not in code
