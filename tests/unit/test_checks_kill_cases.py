"""The deterministic checks of harness/checks.py, one by one and in-process: the exact inputs
each one hands the adapter, the exact failure it reports (message and repro snippet), what it
records in ``observed``, and both sides of every boundary it draws. Small hand-made adapters
on top of ``Faithful`` model the bugs; every check runs directly with a fresh ``Context``."""

import ml_dtypes
import numpy as np
import pytest
from broken_adapters import Faithful, LosesDuplicates, _declared

from harness import checks
from harness.checks import (
    AdapterCrash,
    ConformanceFailure,
    Context,
    WrongEvenIfDeclared,
    run_check,
    sequential_sum_of_ones,
)
from harness.dtypes import np_dtype
from harness.repro import snippet

GRAD_CALL = "adapter.weight_grad(W, ids, up)"
LOOKUP_CALL = "adapter.lookup(W, ids)"
FORWARD_ORACLE = "oracle.forward(W, ids % len(W))"


# --- helpers -------------------------------------------------------------------------------
def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _message(adapter, message, call, expected=None, **arrays) -> str:
    return f"{adapter.id}: {message}\n--- reproduce ---\n{snippet(adapter, call, expected, **arrays)}"


def _fails(run, adapter, cls=ConformanceFailure):
    """Run a check function on ``adapter``; the exception's message and the context."""
    ctx = Context()
    with pytest.raises(Exception) as info:
        run(adapter, ctx)
    assert type(info.value) is cls, (type(info.value), str(info.value))
    return str(info.value), ctx


def _passes(run, adapter) -> Context:
    ctx = Context()
    run(adapter, ctx)
    return ctx


class Recording(Faithful):
    """Faithful, keeping a copy of every native call's inputs (and synchronize's argument)."""

    id = "recording"

    def __init__(self):
        self.log = []

    def forward(self, weights, ids):
        self.log.append(("forward", weights.copy(), np.array(ids, copy=True)))
        return super().forward(weights, ids)

    def gradient(self, weights, ids, upstream):
        self.log.append(("gradient", weights.copy(), np.array(ids, copy=True), np.array(upstream, copy=True)))
        return super().gradient(weights, ids, upstream)

    def synchronize(self, value):
        self.log.append(("synchronize", np.array(value, copy=True)))

    def calls(self):
        return [entry[0] for entry in self.log]


class ForwardOnlyRecording(Recording):
    id = "recording-forward-only"
    declared = _declared(gradient="none")

    def gradient(self, weights, ids, upstream):
        raise AssertionError("a forward-only adapter's gradient is never called")


class FixedGradient(Faithful):
    """Returns the given gradient rows (float64) whatever it is asked."""

    id = "fixed-gradient"

    def __init__(self, rows):
        self.rows = np.asarray(rows, dtype=np.float64)

    def gradient(self, weights, ids, upstream):
        return self.rows.copy()


# --- _labelled_table / _labelled_recipe ----------------------------------------------------
def test_labelled_table_defaults_to_five_by_three_float32_counting_from_one():
    table = checks._labelled_table()
    assert _same(table, np.arange(1, 16, dtype=np.float32).reshape(5, 3))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_labelled_table_rows_are_distinct_and_nonzero_in_the_dtype(dtype):
    table = checks._labelled_table(4, 2, dtype)
    assert _same(table, np.array([[1, 2], [3, 4], [5, 6], [7, 8]], dtype=np.float64).astype(np_dtype(dtype)))
    assert _same(checks._labelled_table(2, 5, dtype), (np.arange(10.0).reshape(2, 5) + 1).astype(np_dtype(dtype)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_labelled_recipe_is_code_that_rebuilds_the_labelled_table(dtype):
    recipe = checks._labelled_recipe(4, 2, dtype)
    assert recipe == f"(np.arange(8, dtype=np.float64).reshape(4, 2) + 1).astype(np_dtype({dtype!r}))"
    assert _same(eval(recipe, {"np": np, "np_dtype": np_dtype}), checks._labelled_table(4, 2, dtype))
    assert checks._labelled_recipe(3, 5) == (
        "(np.arange(15, dtype=np.float64).reshape(3, 5) + 1).astype(np_dtype('float32'))")


# --- sequential_sum_of_ones ------------------------------------------------------------------
def test_sequential_sum_of_ones_stalls_where_one_is_below_half_an_ulp():
    assert sequential_sum_of_ones("float16", 3000) == 2048.0
    assert sequential_sum_of_ones("float16", 2048) == 2048.0
    assert sequential_sum_of_ones("float16", 2047) == 2047.0
    assert sequential_sum_of_ones("bfloat16", 1000) == 256.0
    assert sequential_sum_of_ones("bfloat16", 255) == 255.0
    assert sequential_sum_of_ones("float32", 3000) == 3000.0
    assert sequential_sum_of_ones("float16", 1) == 1.0
    assert sequential_sum_of_ones("float16", 0) == 0.0
    assert type(sequential_sum_of_ones("float16", 5)) is float


# --- _low_precision_accumulation -------------------------------------------------------------
def _accumulate(dtype, hits):
    return lambda adapter, ctx: checks._low_precision_accumulation(dtype, hits, adapter, ctx)


def _accumulation_inputs(dtype, hits, index_dtype="int32"):
    return dict(W=np.zeros((3, 2), dtype=np_dtype(dtype)), ids=np.ones(hits, dtype=index_dtype),
                up=np.ones((hits, 2), dtype=np_dtype(dtype)))


@pytest.mark.parametrize(("dtype", "hits"), [("float16", 3000), ("bfloat16", 1000)])
def test_low_precision_accumulation_exact_sum_passes_and_is_recorded(dtype, hits):
    adapter = Recording()
    ctx = _passes(_accumulate(dtype, hits), adapter)
    assert ctx.observed == {f"accumulated_{dtype}": float(hits)}
    assert type(ctx.observed[f"accumulated_{dtype}"]) is float
    [(name, w, ids, up)] = adapter.log
    inputs = _accumulation_inputs(dtype, hits)
    assert name == "gradient"
    assert _same(w, inputs["W"]) and _same(ids, inputs["ids"]) and _same(up, inputs["up"])


def test_low_precision_accumulation_uses_the_first_preferred_index_dtype():
    class Int64Only(Recording):
        declared = _declared(index_dtypes=("int64",))

    adapter = Int64Only()
    _passes(_accumulate("float16", 3000), adapter)
    assert adapter.log[0][2].dtype == np.int64


def test_low_precision_accumulation_one_final_rounding_of_the_exact_sum_passes():
    # 1001 is not a bfloat16: the faithful adapter's float64 sum, rounded once, is 1000.
    ctx = _passes(_accumulate("bfloat16", 1001), Faithful())
    assert ctx.observed == {"accumulated_bfloat16": 1000.0}


def test_low_precision_accumulation_saturated_sum_is_the_excusable_failure():
    adapter = FixedGradient([[0, 0], [2048, 2048], [0, 0]])
    message, ctx = _fails(_accumulate("float16", 3000), adapter)
    assert message == _message(
        adapter, "3000 unit gradients into one float16 row sum to np.float64(2048.0), not 3000 "
        "(accumulation in float16 saturates)",
        GRAD_CALL, **_accumulation_inputs("float16", 3000))
    assert message.endswith("\nprint(adapter.weight_grad(W, ids, up))")
    assert "\nids = np.full((3000,), 1).astype(np_dtype('int32'))\n" in message
    assert "\nup = np.full((3000, 2), 1.0).astype(np_dtype('float16'))\n" in message
    assert ctx.observed == {"accumulated_float16": 2048.0}


@pytest.mark.parametrize("value", [3000 - 3000 * 2.0**-11, 3000 + 3000 * 2.0**-11])
def test_low_precision_accumulation_error_of_exactly_the_bound_passes(value):
    ctx = _passes(_accumulate("float16", 3000), FixedGradient([[0, 0], [value, value], [0, 0]]))
    assert ctx.observed == {"accumulated_float16": value}


def test_low_precision_accumulation_lowest_accepted_sum_is_the_stall_minus_the_bound():
    lowest = 2048 - 3000 * 2.0**-11
    adapter = FixedGradient([[0, 0], [lowest, lowest], [0, 0]])
    message, _ = _fails(_accumulate("float16", 3000), adapter, ConformanceFailure)
    assert message.startswith("fixed-gradient: 3000 unit gradients into one float16 row sum to "
                              f"{np.float64(lowest)!r}, ")
    below = np.nextafter(lowest, 0)
    _fails(_accumulate("float16", 3000), FixedGradient([[0, 0], [below, below], [0, 0]]), WrongEvenIfDeclared)
    above = np.nextafter(3000 + 3000 * 2.0**-11, np.inf)
    _fails(_accumulate("float16", 3000), FixedGradient([[0, 0], [above, above], [0, 0]]), WrongEvenIfDeclared)


def _wrong(rows, dtype="float16", hits=3000):
    adapter = FixedGradient(rows)
    message, ctx = _fails(_accumulate(dtype, hits), adapter, WrongEvenIfDeclared)
    stall = {"float16": "2048", "bfloat16": "256"}[dtype]
    got = np.asarray(rows, dtype=np.float64).tolist()
    assert message == _message(
        adapter, f"{hits} unit gradients into row 1 of a {dtype} table give {got}: not {hits} (exact) nor "
        f"between {stall} (accumulation in {dtype} stalls there) and {hits}", GRAD_CALL,
        **_accumulation_inputs(dtype, hits))
    return ctx


def test_low_precision_accumulation_other_rows_touched_is_wrong_whatever_is_declared():
    ctx = _wrong([[1, 0], [3000, 3000], [0, 0]])
    assert ctx.observed == {"accumulated_float16": 3000.0}
    ctx = _wrong([[0, 0], [3000, 3000], [0, 7]], "bfloat16", 1000)
    assert ctx.observed == {"accumulated_bfloat16": 3000.0}


def test_low_precision_accumulation_columns_that_disagree_are_wrong():
    ctx = _wrong([[0, 0], [3000, 0], [0, 0]])
    assert ctx.observed == {"accumulated_float16": 3000.0}
    ctx = _wrong([[0, 0], [5, 3000], [9, 9]])
    assert ctx.observed == {"accumulated_float16": 5.0}


def test_low_precision_accumulation_a_sum_outside_the_range_is_wrong():
    _wrong([[0, 0], [256, 256], [0, 0]])
    _wrong([[0, 0], [4000, 4000], [0, 0]])
    _wrong([[0, 0], [np.nan, np.nan], [0, 0]])
    _wrong([[0, 0], [200, 200], [0, 0]], "bfloat16", 1000)


def test_low_precision_accumulation_a_table_of_the_wrong_shape_is_wrong():
    adapter = FixedGradient([[0, 0], [3000, 3000], [0, 0], [0, 0]])
    message, ctx = _fails(_accumulate("float16", 3000), adapter, WrongEvenIfDeclared)
    assert message.startswith("fixed-gradient: 3000 unit gradients into row 1 of a float16 table give "
                              "[[0.0, 0.0], [3000.0, 3000.0], [0.0, 0.0], [0.0, 0.0]]: not 3000 (exact) nor "
                              "between 2048 (accumulation in float16 stalls there) and 3000\n")
    assert ctx.observed == {"accumulated_float16": 3000.0}


def test_low_precision_accumulation_through_run_check_observes_even_on_failure():
    result = run_check(FixedGradient([[0, 0], [3000, 11], [0, 0]]), "low_precision_accumulation[float16]")
    assert result.status == "failed"
    assert result.observed == {"accumulated_float16": 3000.0}


# --- _gradient_representation ----------------------------------------------------------------
REPR_CALL = ("adapter.gradient(adapter.prepare_weights(W), adapter.prepare_ids(ids), "
             "adapter.prepare_upstream(up))")


def _repr_inputs(index_dtype="int32"):
    return dict(W=checks._labelled_table(6, 2), ids=np.array([4, 1, 4, 4], dtype=index_dtype),
                up=np.ones((4, 2), dtype=np.float32))


class SparseRows:
    """A minimal sparse gradient: row indices and their rows."""

    def __init__(self, rows, values, vocab):
        self.rows, self.values, self.vocab = rows, values, vocab


class SparseFaithful(Recording):
    id = "sparse-faithful"
    declared = _declared(gradient="sparse")

    def gradient(self, weights, ids, upstream):
        self.log.append(("gradient", weights.copy(), np.array(ids, copy=True), np.array(upstream, copy=True)))
        flat = np.asarray(ids).reshape(-1)
        return SparseRows(flat, np.asarray(upstream, np.float64).reshape(flat.size, -1), weights.shape[0])

    def is_sparse(self, gradient):
        return isinstance(gradient, SparseRows)

    def to_numpy(self, value):
        if isinstance(value, SparseRows):
            dense = np.zeros((value.vocab, value.values.shape[1]), np.float32)
            np.add.at(dense, value.rows, value.values.astype(np.float32))
            return dense
        return np.asarray(value)


def test_gradient_representation_dense_declared_dense_passes_with_the_inputs_given():
    adapter = Recording()
    ctx = _passes(checks._gradient_representation, adapter)
    assert ctx.observed == {"gradient": "dense"}
    [(name, w, ids, up)] = adapter.log
    inputs = _repr_inputs()
    assert name == "gradient"
    assert _same(w, inputs["W"]) and _same(ids, inputs["ids"]) and _same(up, inputs["up"])


def test_gradient_representation_sparse_declared_sparse_passes():
    adapter = SparseFaithful()
    ctx = _passes(checks._gradient_representation, adapter)
    assert ctx.observed == {"gradient": "sparse"}
    assert run_check(adapter, "gradient_representation").observed == {"gradient": "sparse"}


def test_gradient_representation_index_dtype_is_the_first_preferred_one():
    class Int64Only(Recording):
        declared = _declared(index_dtypes=("int64",))

    adapter = Int64Only()
    _passes(checks._gradient_representation, adapter)
    assert _same(adapter.log[0][2], np.array([4, 1, 4, 4], dtype=np.int64))


def test_gradient_representation_dense_where_sparse_is_declared():
    class DenseButDeclaresSparse(Faithful):
        id = "dense-declares-sparse"
        declared = _declared(gradient="sparse")

    adapter = DenseButDeclaresSparse()
    message, ctx = _fails(checks._gradient_representation, adapter)
    assert message == _message(adapter, "declared a sparse gradient, got a dense one (ndarray)", REPR_CALL,
                               **_repr_inputs())
    assert ctx.observed == {"gradient": "dense"}


def test_gradient_representation_sparse_where_dense_is_declared():
    class SparseButDeclaresDense(SparseFaithful):
        id = "sparse-declares-dense"
        declared = _declared(gradient="dense")

    adapter = SparseButDeclaresDense()
    message, ctx = _fails(checks._gradient_representation, adapter)
    assert message == _message(adapter, "declared a dense gradient, got a sparse one (SparseRows)", REPR_CALL,
                               **_repr_inputs())
    assert ctx.observed == {"gradient": "sparse"}


def test_gradient_representation_densified_gradient_must_equal_the_scatter_add():
    adapter = LosesDuplicates()
    message, ctx = _fails(checks._gradient_representation, adapter)
    assert message == _message(adapter, "the densified gradient differs from the scatter-add", GRAD_CALL,
                               **_repr_inputs())
    assert ctx.observed == {"gradient": "dense"}

    class SparseLosesDuplicates(SparseFaithful):
        id = "sparse-loses-duplicates"

        def to_numpy(self, value):
            dense = np.zeros((value.vocab, value.values.shape[1]), np.float32)
            dense[value.rows] += value.values.astype(np.float32)
            return dense

    message, ctx = _fails(checks._gradient_representation, SparseLosesDuplicates())
    assert message.startswith("sparse-loses-duplicates: the densified gradient differs from the scatter-add\n")
    assert ctx.observed == {"gradient": "sparse"}


def test_gradient_representation_crash_names_the_native_call():
    class Crashes(Faithful):
        id = "crashes-in-gradient"

        def gradient(self, weights, ids, upstream):
            raise RuntimeError("no backward kernel")

    adapter = Crashes()
    message, _ = _fails(checks._gradient_representation, adapter, AdapterCrash)
    assert message == ("crashes-in-gradient: adapter.gradient(adapter.prepare_weights(W) raised RuntimeError: "
                       "no backward kernel\n--- reproduce ---\n" + snippet(adapter, REPR_CALL, **_repr_inputs()))


def test_gradient_representation_an_upstream_changed_in_place_is_named():
    class ScalesUpstreamInPlace(Faithful):
        id = "scales-upstream-in-place"

        def gradient(self, weights, ids, upstream):
            upstream *= 2
            return super().gradient(weights, ids, upstream)

    adapter = ScalesUpstreamInPlace()
    message, _ = _fails(checks._gradient_representation, adapter)
    assert message == _message(adapter, "the adapter changed its input up in place (the caller's array must "
                               "stay as it was)", REPR_CALL, **_repr_inputs())


# --- _duplicates_accumulate ------------------------------------------------------------------
def _duplicate_inputs(index_dtype="int32"):
    return dict(W=checks._labelled_table(6, 2), ids=np.array([[1, 3, 1], [1, 0, 3]], dtype=index_dtype),
                up=(2.0 ** np.arange(12, dtype=np.float64)).reshape(2, 3, 2).astype(np.float32))


def test_duplicates_accumulate_passes_with_the_inputs_given():
    adapter = Recording()
    assert _passes(checks._duplicates_accumulate, adapter).observed == {}
    [(name, w, ids, up)] = adapter.log
    inputs = _duplicate_inputs()
    assert name == "gradient"
    assert _same(w, inputs["W"]) and _same(ids, inputs["ids"]) and _same(up, inputs["up"])


def test_duplicates_accumulate_lost_duplicates_show_both_gradients():
    adapter = LosesDuplicates()
    message, _ = _fails(checks._duplicates_accumulate, adapter)
    got = [[256.0, 512.0], [64.0, 128.0], [0.0, 0.0], [1024.0, 2048.0], [0.0, 0.0], [0.0, 0.0]]
    want = [[256.0, 512.0], [81.0, 162.0], [0.0, 0.0], [1028.0, 2056.0], [0.0, 0.0], [0.0, 0.0]]
    assert message == _message(
        adapter, "duplicate ids do not accumulate exactly (or untouched rows are not zero): "
        f"got rows {got}, expected {want}", GRAD_CALL, expected="oracle.gradient(ids, up, len(W))",
        **_duplicate_inputs())


def test_duplicates_accumulate_a_gradient_of_the_wrong_shape_fails():
    adapter = FixedGradient(np.zeros((5, 2)))
    message, _ = _fails(checks._duplicates_accumulate, adapter)
    assert message.startswith("fixed-gradient: duplicate ids do not accumulate exactly (or untouched rows are "
                              "not zero): got rows [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]")
    good = checks.oracle.gradient(_duplicate_inputs()["ids"], _duplicate_inputs()["up"], 6)
    _passes(checks._duplicates_accumulate, FixedGradient(good))
    _fails(checks._duplicates_accumulate, FixedGradient(good[:, :1]))


# --- _deterministic --------------------------------------------------------------------------
def _deterministic_inputs(index_dtype="int32"):
    rng = np.random.default_rng(7)
    weights = rng.standard_normal((7, 16)).astype(np.float32)
    ids = rng.integers(0, 7, size=3000).astype(index_dtype)
    up = rng.standard_normal((3000, 16)).astype(np.float32)
    return weights, ids, up


def _deterministic_shown(index_dtype="int32"):
    return dict(rng="np.random.default_rng(7)", W="rng.standard_normal((7, 16)).astype(np.float32)",
                ids=f"rng.integers(0, 7, size=3000).astype({index_dtype!r})",
                up="rng.standard_normal((3000, 16)).astype(np.float32)")


def test_deterministic_calls_forward_twice_gradient_twice_then_checks_both():
    adapter = Recording()
    assert _passes(checks._deterministic, adapter).observed == {}
    n = checks.DETERMINISM_CALLS
    assert n >= 2 and adapter.calls() == ["forward"] * n + ["gradient"] * n + ["forward", "gradient"]
    weights, ids, up = _deterministic_inputs()
    for entry in adapter.log:
        assert _same(entry[1], weights) and _same(entry[2], ids)
        if entry[0] == "gradient":
            assert _same(entry[3], up)


def test_deterministic_forward_only_never_asks_for_a_gradient():
    adapter = ForwardOnlyRecording()
    _passes(checks._deterministic, adapter)
    assert adapter.calls() == ["forward"] * (checks.DETERMINISM_CALLS + 1)


def test_deterministic_int64_only_adapter_gets_int64_ids():
    class Int64Only(Recording):
        declared = _declared(index_dtypes=("int64",))

    adapter = Int64Only()
    _passes(checks._deterministic, adapter)
    assert _same(adapter.log[0][2], _deterministic_inputs("int64")[1])


class Alternating(Faithful):
    """Every other call's result is off by one ulp in one value (unordered atomics)."""

    id = "alternating"

    def __init__(self, what):
        self.what, self.count = what, 0

    def _flip(self, result):
        self.count += 1
        result = np.array(result, copy=True)
        if self.count % 2 == 0:
            result.reshape(-1)[0] = np.nextafter(result.reshape(-1)[0], np.float32(np.inf))
        return result

    def forward(self, weights, ids):
        result = super().forward(weights, ids)
        return self._flip(result) if self.what == "forward" else result

    def gradient(self, weights, ids, upstream):
        result = super().gradient(weights, ids, upstream)
        return self._flip(result) if self.what == "gradient" else result


@pytest.mark.parametrize(("what", "call"), [("forward", LOOKUP_CALL), ("gradient", GRAD_CALL)])
def test_deterministic_two_calls_that_differ_are_reported_with_the_seeded_recipe(what, call):
    adapter = Alternating(what)
    message, _ = _fails(checks._deterministic, adapter)
    assert message == _message(adapter, f"{what} differs between identical calls (the first and call 2 of up to "
                               f"{checks.DETERMINISM_CALLS})", f"{call} - {call}", **_deterministic_shown())


class DiffersOnlyLate(Faithful):
    """Identical for the first calls, then one ulp off: a race that shows rarely."""

    id = "differs-late"

    def __init__(self):
        self.count = 0

    def gradient(self, weights, ids, upstream):
        self.count += 1
        result = np.array(super().gradient(weights, ids, upstream), copy=True)
        if self.count == checks.DETERMINISM_CALLS:
            result.reshape(-1)[0] = np.nextafter(result.reshape(-1)[0], np.float32(np.inf))
        return result


def test_deterministic_keeps_calling_until_the_last_of_its_calls():
    message, _ = _fails(checks._deterministic, DiffersOnlyLate())
    assert f"the first and call {checks.DETERMINISM_CALLS} of up to" in message


def test_deterministic_but_wrong_is_reported_against_the_oracle_with_the_recipe():
    class AlwaysRowZero(Faithful):
        id = "always-row-zero"

        def forward(self, weights, ids):
            return np.take(weights, np.zeros_like(ids), axis=0)

    adapter = AlwaysRowZero()
    message, _ = _fails(checks._deterministic, adapter)
    head, repro = message.split("\n--- reproduce ---\n")
    assert head.startswith("always-row-zero: ") and "output values differ from W[ids] (bit-exact)" in head
    assert repro == snippet(adapter, LOOKUP_CALL, FORWARD_ORACLE, **_deterministic_shown())

    class GradientTwice(Faithful):
        id = "gradient-twice"

        def gradient(self, weights, ids, upstream):
            return (super().gradient(weights, ids, upstream) * 2).astype(weights.dtype)

    adapter = GradientTwice()
    message, _ = _fails(checks._deterministic, adapter)
    head, repro = message.split("\n--- reproduce ---\n")
    assert head.startswith("gradient-twice: gradient differs from the scatter-add at row 0 col 0: ")
    assert repro == snippet(adapter, GRAD_CALL, "oracle.gradient(ids % len(W), up, len(W))",
                            **_deterministic_shown())


# --- _weights_unchanged ----------------------------------------------------------------------
def _unchanged_inputs(index_dtype="int32"):
    return dict(W=checks._labelled_table(7, 3), ids=np.array([[0, 3, 3], [6, 0, 2]], dtype=index_dtype),
                up=np.full((2, 3, 3), 0.5, dtype=np.float32))


UNCHANGED_CALL = ("(w := adapter.prepare_weights(W), adapter.forward(w, adapter.prepare_ids(ids)), "
                  "adapter.gradient(w, adapter.prepare_ids(ids), adapter.prepare_upstream(up)), "
                  "adapter.table_of(w))[-1]")
UNCHANGED_FORWARD_ONLY_CALL = ("(w := adapter.prepare_weights(W), adapter.forward(w, adapter.prepare_ids(ids)), "
                               "adapter.table_of(w))[-1]")


def test_weights_unchanged_uses_forward_then_gradient_and_synchronizes_each():
    adapter = Recording()
    assert _passes(checks._weights_unchanged, adapter).observed == {}
    inputs = _unchanged_inputs()
    assert adapter.calls() == ["forward", "synchronize", "gradient", "synchronize"]
    (_, w1, ids1), (_, fwd), (_, w2, ids2, up), (_, grad) = adapter.log
    assert _same(w1, inputs["W"]) and _same(w2, inputs["W"])
    assert _same(ids1, inputs["ids"]) and _same(ids2, inputs["ids"]) and _same(up, inputs["up"])
    assert _same(fwd, np.take(inputs["W"], inputs["ids"], axis=0))
    want = checks.oracle.gradient(inputs["ids"], inputs["up"], 7).astype(np.float32)
    assert _same(grad, want)


def test_weights_unchanged_forward_only_never_asks_for_a_gradient():
    adapter = ForwardOnlyRecording()
    _passes(checks._weights_unchanged, adapter)
    assert adapter.calls() == ["forward", "synchronize"]


class CopiesAndRenormalises(Faithful):
    """Keeps its own copy of the table and renormalises looked-up rows in place (max_norm)."""

    id = "renormalises-own-copy"

    def prepare_weights(self, weights):
        return np.array(weights, copy=True)

    def forward(self, weights, ids):
        rows = np.unique(np.asarray(ids))
        weights[rows] /= np.linalg.norm(weights[rows], axis=1, keepdims=True)
        return np.take(weights, ids, axis=0)


def _renormalised():
    weights = checks._labelled_table(7, 3)
    rows = np.array([0, 2, 3, 6])
    weights[rows] /= np.linalg.norm(weights[rows], axis=1, keepdims=True)
    return weights


def test_weights_unchanged_a_renormalised_own_copy_is_reported_with_the_table():
    adapter = CopiesAndRenormalises()
    message, _ = _fails(checks._weights_unchanged, adapter)
    shown = _renormalised().astype(np.float64).tolist()
    assert message == _message(adapter, f"the table held by the adapter changed during forward/gradient: {shown}",
                               UNCHANGED_CALL, **_unchanged_inputs())


def test_weights_unchanged_forward_only_call_text_has_no_backward():
    class ForwardOnlyRenormalises(CopiesAndRenormalises):
        id = "forward-only-renormalises"
        declared = _declared(gradient="none")

    adapter = ForwardOnlyRenormalises()
    message, _ = _fails(checks._weights_unchanged, adapter)
    assert message.endswith(f"\nprint({UNCHANGED_FORWARD_ONLY_CALL})")
    assert message == _message(adapter, "the table held by the adapter changed during forward/gradient: "
                               f"{_renormalised().astype(np.float64).tolist()}", UNCHANGED_FORWARD_ONLY_CALL,
                               **_unchanged_inputs())


def test_weights_unchanged_a_gradient_that_updates_the_table_is_caught():
    class AppliesTheUpdate(Faithful):
        id = "applies-the-update"

        def prepare_weights(self, weights):
            return np.array(weights, copy=True)

        def gradient(self, weights, ids, upstream):
            grad = super().gradient(weights, ids, upstream)
            weights -= grad
            return grad

    adapter = AppliesTheUpdate()
    message, _ = _fails(checks._weights_unchanged, adapter)
    inputs = _unchanged_inputs()
    updated = inputs["W"] - checks.oracle.gradient(inputs["ids"], inputs["up"], 7).astype(np.float32)
    assert message == _message(adapter, "the table held by the adapter changed during forward/gradient: "
                               f"{updated.astype(np.float64).tolist()}", UNCHANGED_CALL, **inputs)


def test_weights_unchanged_changing_the_callers_table_names_it():
    class ChangesCallersTable(Faithful):
        id = "changes-callers-table"

        def forward(self, weights, ids):
            weights[0] = 0
            return np.take(weights, ids, axis=0)

    adapter = ChangesCallersTable()
    message, _ = _fails(checks._weights_unchanged, adapter)
    assert message == _message(adapter, "the adapter changed its input W in place (the caller's array must stay "
                               "as it was)", UNCHANGED_CALL, **_unchanged_inputs())


# --- _inputs_not_cached ----------------------------------------------------------------------
def _cached_inputs():
    ids = np.array([[0, 3], [6, 3]], dtype=np.int32)
    first = checks._labelled_table(7, 3)
    second = (first.astype(np.float64) * -2 + 0.5).astype(np.float32)
    return ids, first, second


def test_inputs_not_cached_three_tables_then_two_upstreams():
    adapter = Recording()
    assert _passes(checks._inputs_not_cached, adapter).observed == {}
    ids, first, second = _cached_inputs()
    assert adapter.calls() == ["forward"] * 3 + ["gradient"] * 2
    for (_, w, got_ids), table in zip(adapter.log[:3], (first, second, first), strict=True):
        assert _same(w, table) and _same(got_ids, ids)
    for (_, w, got_ids, up), value in zip(adapter.log[3:], (1.0, -4.0), strict=True):
        assert _same(w, first) and _same(got_ids, ids) and _same(up, np.full((2, 2, 3), value, np.float32))


def test_inputs_not_cached_forward_only_never_asks_for_a_gradient():
    adapter = ForwardOnlyRecording()
    _passes(checks._inputs_not_cached, adapter)
    assert adapter.calls() == ["forward"] * 3


class CachesForward(Faithful):
    """Caches the forward result per ids (a stale lookup table)."""

    id = "caches-forward"

    def __init__(self):
        self.cache = {}

    def forward(self, weights, ids):
        key = np.asarray(ids).tobytes()
        if key not in self.cache:
            self.cache[key] = np.take(weights, ids, axis=0)
        return self.cache[key]


def test_inputs_not_cached_a_cached_table_is_reported_on_the_second_table():
    adapter = CachesForward()
    message, _ = _fails(checks._inputs_not_cached, adapter)
    ids, first, second = _cached_inputs()
    assert message == _message(adapter, "12 output values differ from W[ids] (bit-exact); first at (0, 0, 0): "
                               "got np.float32(1.0), expected np.float32(-1.5)", LOOKUP_CALL, FORWARD_ORACLE,
                               W=second, ids=ids)


def test_inputs_not_cached_a_cached_gradient_is_reported_on_the_second_upstream():
    class CachesGradient(Faithful):
        id = "caches-gradient"

        def gradient(self, weights, ids, upstream):
            if not hasattr(self, "kept"):
                self.kept = super().gradient(weights, ids, upstream)
            return self.kept

    adapter = CachesGradient()
    message, _ = _fails(checks._inputs_not_cached, adapter)
    ids, first, _ = _cached_inputs()
    head, repro = message.split("\n--- reproduce ---\n")
    assert head.startswith("caches-gradient: gradient differs from the scatter-add at row 0 col 0: got "
                           "np.float32(1.0), exact np.float64(-4.0), 1 duplicate ids, tolerance ")
    assert head.endswith("(u*|exact| + gamma_(k-1)*sum|up| in float32)")
    assert repro == snippet(adapter, GRAD_CALL, "oracle.gradient(ids % len(W), up, len(W))", W=first, ids=ids,
                            up=np.full((2, 2, 3), -4.0, np.float32))


def test_inputs_not_cached_uses_the_first_preferred_index_dtype():
    class Int64Only(Recording):
        declared = _declared(index_dtypes=("int64",))

    adapter = Int64Only()
    _passes(checks._inputs_not_cached, adapter)
    assert all(entry[2].dtype == np.int64 for entry in adapter.log)


# --- _nan_inf_isolated / _negative_zero / _subnormals ----------------------------------------
def _nan_inf_table():
    weights = checks._labelled_table(6, 3)
    weights[4] = np.nan
    weights[5] = [np.inf, -np.inf, np.inf]
    return weights


class OneHotMatmul(Faithful):
    """one_hot(ids) @ W: 0 * NaN and 0 * Inf poison every output row."""

    id = "onehot-matmul"

    def forward(self, weights, ids):
        onehot = np.eye(weights.shape[0], dtype=weights.dtype)[np.asarray(ids)]
        with np.errstate(invalid="ignore"):
            return onehot @ weights


def test_nan_inf_isolated_passes_with_the_inputs_given():
    adapter = Recording()
    assert _passes(checks._nan_inf_isolated, adapter).observed == {}
    [(name, w, ids)] = adapter.log
    assert name == "forward" and _same(w, _nan_inf_table()) and _same(ids, np.array([0, 1, 2, 3, 0], np.int32))


def test_nan_inf_isolated_leaks_are_reported_with_the_table():
    adapter = OneHotMatmul()
    message, _ = _fails(checks._nan_inf_isolated, adapter)
    assert message == _message(adapter, "15 output values differ from W[ids] (bit-exact); first at (0, 0): got "
                               "np.float32(nan), expected np.float32(1.0)", LOOKUP_CALL, FORWARD_ORACLE,
                               W=_nan_inf_table(), ids=np.array([0, 1, 2, 3, 0], np.int32))
    assert "W = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, float('nan'), " \
           "float('nan'), float('nan'), float('inf'), -float('inf'), float('inf')]).reshape((6, 3))" in message


def test_nan_inf_isolated_only_the_poisoned_rows():
    class LeaksRowFour(Faithful):
        id = "leaks-row-four"

        def forward(self, weights, ids):
            out = np.take(weights, ids, axis=0)
            out[-1] = weights[4]
            return out

    _fails(checks._nan_inf_isolated, LeaksRowFour())

    class LeaksRowFive(Faithful):
        id = "leaks-row-five"

        def forward(self, weights, ids):
            out = np.take(weights, ids, axis=0)
            out[-1, 1] = weights[5, 1]
            return out

    message, _ = _fails(checks._nan_inf_isolated, LeaksRowFive())
    assert "1 output values differ from W[ids] (bit-exact); first at (4, 1): got np.float32(-inf), " \
           "expected np.float32(2.0)" in message


def _negative_zero_table():
    weights = checks._labelled_table(4, 3)
    weights[2] = -0.0
    return weights


class AddsZero(Faithful):
    """out = W[ids] + 0.0: -0.0 comes back as +0.0."""

    id = "adds-zero"

    def forward(self, weights, ids):
        return np.take(weights, ids, axis=0) + np.zeros((), weights.dtype)


def test_negative_zero_passes_with_the_inputs_given():
    adapter = Recording()
    assert _passes(checks._negative_zero, adapter).observed == {}
    [(name, w, ids)] = adapter.log
    assert name == "forward" and _same(w, _negative_zero_table()) and _same(ids, np.array([2, 0], np.int32))


def test_negative_zero_lost_sign_is_reported():
    adapter = AddsZero()
    message, _ = _fails(checks._negative_zero, adapter)
    assert message == _message(adapter, "3 output values differ from W[ids] (bit-exact); first at (0, 0): got "
                               "np.float32(0.0), expected np.float32(-0.0)", LOOKUP_CALL, FORWARD_ORACLE,
                               W=_negative_zero_table(), ids=np.array([2, 0], np.int32))


class FlushesSubnormals(Faithful):
    """Denormals-are-zero: subnormal rows come back as zeros."""

    id = "flushes-subnormals"

    def forward(self, weights, ids):
        out = np.take(weights, ids, axis=0)
        smallest_normal = float(ml_dtypes.finfo(out.dtype).smallest_normal)
        flat = out.astype(np.float64)
        return np.where(np.abs(flat) < smallest_normal, 0.0, flat).astype(out.dtype)


def _subnormal_table(dtype):
    weights = checks._labelled_table(4, 3, dtype)
    tiny = float(ml_dtypes.finfo(np_dtype(dtype)).smallest_subnormal)
    weights[1] = (np.array([1.0, 2.0, 3.0]) * tiny).astype(np_dtype(dtype))
    return weights


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_subnormals_pass_with_the_inputs_given(dtype):
    adapter = Recording()
    assert _passes(lambda a, c: checks._subnormals(dtype, a, c), adapter).observed == {}
    [(name, w, ids)] = adapter.log
    assert name == "forward" and _same(w, _subnormal_table(dtype)) and _same(ids, np.array([1, 0, 1], np.int32))
    assert np.count_nonzero(w[1]) == 3


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_subnormals_flushed_to_zero_are_reported(dtype):
    adapter = FlushesSubnormals()
    message, _ = _fails(lambda a, c: checks._subnormals(dtype, a, c), adapter)
    want = _subnormal_table(dtype)
    assert message == _message(adapter, f"6 output values differ from W[ids] (bit-exact); first at (0, 0): got "
                               f"{np.zeros((), np_dtype(dtype))[()]!r}, expected {want[1, 0]!r}", LOOKUP_CALL,
                               FORWARD_ORACLE, W=want, ids=np.array([1, 0, 1], np.int32))


def test_subnormal_checks_run_through_run_check_per_dtype():
    assert run_check(FlushesSubnormals(), "subnormals_preserved[bfloat16]").status == "failed"
    assert run_check(Faithful(), "subnormals_preserved[float16]").status == "passed"


# --- _scalar_id / _empty_batch / _vocab_of_one ----------------------------------------------
def test_scalar_id_passes_with_the_inputs_given():
    adapter = Recording()
    assert _passes(checks._scalar_id, adapter).observed == {}
    assert adapter.calls() == ["forward", "gradient"]
    (_, w, ids), (_, w2, ids2, up) = adapter.log
    table = checks._labelled_table(4, 3)
    assert _same(w, table) and _same(w2, table)
    assert _same(ids, np.array(2, np.int32)) and _same(ids2, np.array(2, np.int32))
    assert _same(up, np.array([1.0, 2.0, 4.0], np.float32))


def test_scalar_id_forward_only_and_int64_only():
    adapter = ForwardOnlyRecording()
    _passes(checks._scalar_id, adapter)
    assert adapter.calls() == ["forward"]

    class Int64Only(Recording):
        declared = _declared(index_dtypes=("int64",))

    adapter = Int64Only()
    _passes(checks._scalar_id, adapter)
    assert _same(adapter.log[0][2], np.array(2, np.int64))


class FlattensIds(Faithful):
    """Flattens ids first: a 0-d id gives a (1, dim) output."""

    id = "flattens-ids"

    def forward(self, weights, ids):
        return np.take(weights, np.asarray(ids).reshape(-1), axis=0)


def test_scalar_id_flattened_is_reported_with_the_scalar():
    adapter = FlattensIds()
    message, _ = _fails(checks._scalar_id, adapter)
    assert message == _message(adapter, "output shape (1, 3), expected ids.shape + (dim,) = (3,)", LOOKUP_CALL,
                               FORWARD_ORACLE, W=checks._labelled_table(4, 3), ids=np.array(2, np.int32))


def test_scalar_id_wrong_gradient_is_reported_with_the_upstream():
    class GradientToRowZero(Faithful):
        id = "gradient-to-row-zero"

        def gradient(self, weights, ids, upstream):
            return super().gradient(weights, np.zeros_like(ids), upstream)

    adapter = GradientToRowZero()
    message, _ = _fails(checks._scalar_id, adapter)
    head, repro = message.split("\n--- reproduce ---\n")
    assert head.startswith("gradient-to-row-zero: gradient an untouched row is not zero at row 0 col 0: got "
                           "np.float32(1.0), exact np.float64(0.0), 0 duplicate ids, tolerance ")
    assert repro == snippet(adapter, GRAD_CALL, "oracle.gradient(ids % len(W), up, len(W))",
                            W=checks._labelled_table(4, 3), ids=np.array(2, np.int32),
                            up=np.array([1.0, 2.0, 4.0], np.float32))


def test_empty_batch_passes_with_the_inputs_given():
    adapter = Recording()
    assert _passes(checks._empty_batch, adapter).observed == {}
    assert adapter.calls() == ["forward", "gradient"] * 2
    table = checks._labelled_table(4, 3)
    for i, shape in enumerate([(0,), (3, 0)]):
        (_, w, ids), (_, w2, ids2, up) = adapter.log[2 * i: 2 * i + 2]
        assert _same(w, table) and _same(w2, table)
        assert _same(ids, np.zeros(shape, np.int32)) and _same(ids2, np.zeros(shape, np.int32))
        assert _same(up, np.zeros(shape + (3,), np.float32))


def test_empty_batch_forward_only():
    adapter = ForwardOnlyRecording()
    _passes(checks._empty_batch, adapter)
    assert adapter.calls() == ["forward", "forward"]


def test_empty_batch_flattened_ids_are_reported_on_the_two_dimensional_batch():
    adapter = FlattensIds()
    message, _ = _fails(checks._empty_batch, adapter)
    assert message == _message(adapter, "output shape (0, 3), expected ids.shape + (dim,) = (3, 0, 3)",
                               LOOKUP_CALL, FORWARD_ORACLE, W=checks._labelled_table(4, 3),
                               ids=np.zeros((3, 0), np.int32))


def test_empty_batch_a_nonzero_gradient_is_reported():
    class GradientOfOnes(Faithful):
        id = "gradient-of-ones"

        def gradient(self, weights, ids, upstream):
            return np.ones(weights.shape, weights.dtype)

    adapter = GradientOfOnes()
    message, _ = _fails(checks._empty_batch, adapter)
    head, repro = message.split("\n--- reproduce ---\n")
    assert head.startswith("gradient-of-ones: gradient an untouched row is not zero at row 0 col 0: ")
    assert repro == snippet(adapter, GRAD_CALL, "oracle.gradient(ids % len(W), up, len(W))",
                            W=checks._labelled_table(4, 3), ids=np.zeros((0,), np.int32),
                            up=np.zeros((0, 3), np.float32))


def _vocab_of_one_table():
    return np.array([[1.5, -2.0, 3.25, 0.5]], dtype=np.float32)


def test_vocab_of_one_passes_with_the_inputs_given():
    adapter = Recording()
    assert _passes(checks._vocab_of_one, adapter).observed == {}
    assert adapter.calls() == ["forward", "gradient"] * 2
    for i, shape in enumerate([(), (2, 3)]):
        (_, w, ids), (_, w2, ids2, up) = adapter.log[2 * i: 2 * i + 2]
        assert _same(w, _vocab_of_one_table()) and _same(w2, _vocab_of_one_table())
        assert _same(ids, np.zeros(shape, np.int32)) and _same(ids2, np.zeros(shape, np.int32))
        size = int(np.prod(shape, dtype=int))
        assert _same(up, np.arange(size * 4, dtype=np.float32).reshape(shape + (4,)))


def test_vocab_of_one_forward_only_and_int64_only():
    adapter = ForwardOnlyRecording()
    _passes(checks._vocab_of_one, adapter)
    assert adapter.calls() == ["forward", "forward"]

    class Int64Only(Recording):
        declared = _declared(index_dtypes=("int64",))

    adapter = Int64Only()
    _passes(checks._vocab_of_one, adapter)
    assert _same(adapter.log[0][2], np.zeros((), np.int64))


def test_vocab_of_one_flattened_scalar_is_reported():
    adapter = FlattensIds()
    message, _ = _fails(checks._vocab_of_one, adapter)
    assert message == _message(adapter, "output shape (1, 4), expected ids.shape + (dim,) = (4,)", LOOKUP_CALL,
                               FORWARD_ORACLE, W=_vocab_of_one_table(), ids=np.zeros((), np.int32))


def test_vocab_of_one_wrong_gradient_is_reported_with_the_upstream():
    class HalvesGradient(Faithful):
        id = "halves-gradient"

        def gradient(self, weights, ids, upstream):
            return (super().gradient(weights, ids, upstream) / 2).astype(weights.dtype)

    adapter = HalvesGradient()
    message, _ = _fails(checks._vocab_of_one, adapter)
    head, repro = message.split("\n--- reproduce ---\n")
    assert head.startswith("halves-gradient: gradient differs from the scatter-add at row 0 col 1: got "
                           "np.float32(0.5), exact np.float64(1.0), 1 duplicate ids, tolerance ")
    assert repro == snippet(adapter, GRAD_CALL, "oracle.gradient(ids % len(W), up, len(W))",
                            W=_vocab_of_one_table(), ids=np.zeros((), np.int32),
                            up=np.arange(4, dtype=np.float32))


# --- _large_vocab_and_batch ------------------------------------------------------------------
EDGES = [0, 1, 127, 128, 255, 256, 32767, 32768, 65535, 65536, 69999]


def _large_inputs(n, index_dtype="int32"):
    rng = np.random.default_rng(11)
    weights = rng.standard_normal((70_000, 17)).astype(np.float32)
    ids = rng.integers(0, 70_000, size=n)
    ids[: len(EDGES)] = EDGES
    return weights, ids.astype(index_dtype), rng.standard_normal((n, 17)).astype(np.float32)


def _large_shown(n, index_dtype="int32"):
    return {"W": "(rng := np.random.default_rng(11)).standard_normal((70000, 17)).astype(np.float32)",
            "ids": f"np.concatenate([{EDGES}, rng.integers(0, 70000, size={n})[11:]]).astype({index_dtype!r})",
            "up": f"rng.standard_normal(({n}, 17)).astype(np.float32)"}


def test_large_vocab_and_batch_gather_gets_5000_ids_with_every_boundary():
    adapter = Recording()
    _passes(checks._large_vocab_and_batch, adapter)
    assert adapter.calls() == ["forward", "gradient"]
    weights, ids, up = _large_inputs(5000)
    (_, w, got_ids), (_, w2, ids2, got_up) = adapter.log
    assert _same(w, weights) and _same(w2, weights)
    assert _same(got_ids, ids) and _same(ids2, ids) and _same(got_up, up)


def test_large_vocab_and_batch_onehot_batch_is_capped_by_the_cell_budget():
    class OneHotRecording(Recording):
        variant = "onehot"

    adapter = OneHotRecording()
    _passes(checks._large_vocab_and_batch, adapter)
    n = 2**22 // 70_000
    assert n == 59
    weights, ids, up = _large_inputs(n)
    assert _same(adapter.log[0][2], ids) and _same(adapter.log[1][3], up)


def test_large_vocab_and_batch_narrow_ids_are_reported_with_the_seeded_recipe():
    class NarrowsToInt16(Faithful):
        id = "narrows-to-int16"
        declared = _declared(index_dtypes=("int64",))

        def forward(self, weights, ids):
            return np.take(weights, np.asarray(ids).astype(np.int16), axis=0)

    adapter = NarrowsToInt16()
    message, _ = _fails(checks._large_vocab_and_batch, adapter)
    head, repro = message.split("\n--- reproduce ---\n")
    assert head.startswith("narrows-to-int16: ")
    assert "output values differ from W[ids] (bit-exact); first at (7, 0): " in head
    assert repro == snippet(adapter, LOOKUP_CALL, FORWARD_ORACLE, **_large_shown(5000, "int64"))
    assert "\nids = np.concatenate([[0, 1, 127, 128, 255, 256, 32767, 32768, 65535, 65536, 69999], " \
           "rng.integers(0, 70000, size=5000)[11:]]).astype('int64')\n" in repro


def test_large_vocab_and_batch_gradient_failure_shows_the_upstream_recipe():
    class DropsLastBlock(Faithful):
        id = "drops-last-block"

        def gradient(self, weights, ids, upstream):
            flat = ids.reshape(-1)
            keep = flat.size // 512 * 512
            return super().gradient(weights, flat[:keep], np.asarray(upstream).reshape(-1, 17)[:keep])

    adapter = DropsLastBlock()
    message, _ = _fails(checks._large_vocab_and_batch, adapter)
    head, repro = message.split("\n--- reproduce ---\n")
    assert head.startswith("drops-last-block: gradient differs from the scatter-add at row ")
    assert repro == snippet(adapter, GRAD_CALL, "oracle.gradient(ids % len(W), up, len(W))", **_large_shown(5000))


class CrashesOnSecondCall(Faithful):
    """Its second forward (or gradient) call raises: the crash repro rebuilds the seeded inputs."""

    id = "crashes-on-second-call"

    def __init__(self, what):
        self.what, self.count = what, 0

    def _maybe_crash(self):
        self.count += 1
        if self.count == 2:
            raise MemoryError("workspace exhausted")

    def forward(self, weights, ids):
        if self.what == "forward":
            self._maybe_crash()
        return super().forward(weights, ids)

    def gradient(self, weights, ids, upstream):
        if self.what == "gradient":
            self._maybe_crash()
        return super().gradient(weights, ids, upstream)


@pytest.mark.parametrize(("what", "call"), [("forward", LOOKUP_CALL), ("gradient", GRAD_CALL)])
def test_deterministic_a_crash_is_reported_with_the_seeded_recipe(what, call):
    adapter = CrashesOnSecondCall(what)
    message, _ = _fails(checks._deterministic, adapter, AdapterCrash)
    assert message == (f"crashes-on-second-call: {call.split(',')[0]} raised MemoryError: workspace exhausted\n"
                       f"--- reproduce ---\n" + snippet(adapter, call, **_deterministic_shown()))
