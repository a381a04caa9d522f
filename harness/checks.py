"""The conformance checks, framework-neutral and pytest-free.

Each check takes an adapter and raises ``ConformanceFailure`` (an AssertionError whose
message ends with a paste-able reproducing snippet) when the adapter breaks the gather
semantics or its own declaration. ``run_check`` turns that into a status, honouring the
adapter's declared deviations (expected failures, strict: a deviation that does not occur
is a failure) and not-applicable checks (skips with a reason).

Every adapter call goes through ``_call``: the oracle's answer is computed beforehand from
the inputs as they were, a pristine same-layout copy of each input is kept, an input the
adapter changed in place is a failure, and an exception the adapter raises comes back with
a snippet that reproduces it.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import ml_dtypes
import numpy as np
from hypothesis import given, settings, target
from hypothesis.errors import InvalidArgument

from harness import hypothesis_profiles, layouts, oracle
from harness.adapter import LAYER_OPTIONS, EmbeddingAdapter
from harness.bags import MODES as BAG_MODES
from harness.dtypes import CANDIDATE_INDEX_DTYPES, WEIGHT_DTYPES, dtype_name, np_dtype, unit_roundoff
from harness.errors import HarnessError
from harness.isolation import CRASH, IsolationFailed, needs_isolation, probe_isolated
from harness.platform import declared_here
from harness.repro import array_literal, snippet
from harness.strategies import (
    ONEHOT_CELLS,
    Case,
    boundary_cases,
    boundary_ids,
    lookup_cases,
    minimal_cases,
    wrapped,
)
from harness.tolerance import MATMUL_UNIT_ROUNDOFF, forward_tolerance, gradient_tolerance


class ConformanceFailure(AssertionError):
    """An observed behaviour that contradicts gather semantics or the declaration."""

    excusable = True  # a declared deviation of this check may account for it


class WrongEvenIfDeclared(ConformanceFailure):
    """A result no declared deviation can explain (a sum that is neither exact nor saturated)."""

    excusable = False


class AdapterCrash(Exception):
    """The adapter raised where it should have returned; the message holds the repro."""


@dataclass
class Context:
    """Per-run scratch: examples executed and behaviour observed (goes into the report)."""

    examples: int = 0
    observed: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    name: str
    summary: str
    run: Callable[[EmbeddingAdapter, Context], None]
    # Returns a skip reason when the check does not apply to this adapter.
    applies: Callable[[EmbeddingAdapter], str | None] = lambda adapter: None
    # "lookup" checks run on lookup adapters, "bag" checks on bag adapters (Declared.bags).
    family: str = "lookup"


@dataclass
class CheckResult:
    check: str
    status: str  # passed | failed | xfailed | skipped
    detail: str = ""
    examples: int = 0
    duration_s: float = 0.0
    observed: dict = field(default_factory=dict)


# --- calling the adapter -------------------------------------------------------------------
def _preferred_ids_dtypes(adapter: EmbeddingAdapter) -> tuple[str, ...]:
    ints = [d for d in adapter.declared.index_dtypes if d in ("int32", "int64")]
    return tuple(ints or [d for d in adapter.declared.index_dtypes if d != "float32"][:1] or ["int64"])


def _fail(adapter, message: str, call: str, *, expected: str | None = None, cls=ConformanceFailure,
          **arrays) -> None:
    raise cls(f"{adapter.id}: {message}\n--- reproduce ---\n{snippet(adapter, call, expected, **arrays)}")


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(f"u{array.dtype.itemsize}")


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(_bits(a), _bits(b)))


# Under the supervisor each process names a file here: the snippet of the adapter call about
# to run is kept in it, so a process that dies (or hangs) inside that call still leaves one.
LAST_CALL_ENV = "EMBEDDING_HARNESS_LAST_CALL"


def _note_call(adapter, call: str, shown: dict) -> None:
    path = os.environ.get(LAST_CALL_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(snippet(adapter, call, **shown))


def _headline(exc: BaseException) -> str:
    """An exception's message in one line: its first line, and the next one when it goes on
    (wrappers such as Keras' "Exception encountered when calling X.call()." put the cause
    there), without terminal colour codes."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if line.strip()]
    return " ".join(lines[:2])[:300]


def _call(adapter, call: str, fn: Callable[[], np.ndarray], inputs: dict, shown: dict | None = None):
    """``fn()``, an adapter call on ``inputs`` (name -> array). ``shown``: what the repro
    snippet prints for each name (a recipe for a large generated array)."""
    pristine = {name: layouts.copy(value) for name, value in inputs.items()}
    shown = _shown(pristine, shown)
    _note_call(adapter, call, shown)
    try:
        result = fn()
    except ConformanceFailure:
        raise
    except Exception as exc:
        raise AdapterCrash(f"{adapter.id}: {call.split(',')[0]} raised {type(exc).__name__}: {_headline(exc)}\n"
                           f"--- reproduce ---\n{snippet(adapter, call, **shown)}") from exc
    for name, before in pristine.items():
        if not _same_bits(np.asarray(inputs[name]), before):
            _fail(adapter, f"the adapter changed its input {name} in place (the caller's array must "
                  f"stay as it was)", call, **shown)
    return result


def _shown(arrays: dict, recipes: dict | None) -> dict:
    """What a snippet prints: the recipes first (in their order: one may set up the next),
    then every array that has none."""
    merged = dict(recipes or {})
    for name, value in arrays.items():
        merged.setdefault(name, value)
    return merged


def _lookup(adapter, weights, ids, shown: dict | None = None) -> np.ndarray:
    return _call(adapter, "adapter.lookup(W, ids)", lambda: adapter.lookup(weights, ids),
                 {"W": weights, "ids": ids}, shown)


def _grad(adapter, weights, ids, up, shown: dict | None = None) -> np.ndarray:
    return _call(adapter, "adapter.weight_grad(W, ids, up)", lambda: adapter.weight_grad(weights, ids, up),
                 {"W": weights, "ids": ids, "up": up}, shown)


def _has_gradient(adapter) -> bool:
    return adapter.declared.gradient != "none"


# --- expectations --------------------------------------------------------------------------
def _expect_rows(adapter, got, want, shown: dict, dtype: str | None = None, *,
                 call: str = "adapter.lookup(W, ids)", oracle_call: str = "oracle.forward(W, ids % len(W))") -> None:
    """Output shape idx.shape + (dim,), the weight dtype, and rows equal to W[idx]."""
    if got.shape != want.shape:
        _fail(adapter, f"output shape {got.shape}, expected ids.shape + (dim,) = {want.shape}", call,
              expected=oracle_call, **shown)
    if dtype_name(got.dtype) != dtype_name(want.dtype):
        _fail(adapter, f"output dtype {dtype_name(got.dtype)}, expected the weight dtype "
              f"{dtype_name(want.dtype)}", call, expected=oracle_call, **shown)
    tol = forward_tolerance(want, adapter.declared.matmul_precision, dtype or dtype_name(want.dtype))
    if tol is None:
        bad = _bits(got) != _bits(want)
        rule = "bit-exact"
    else:
        bad = ~(np.abs(got.astype(np.float64) - want.astype(np.float64)) <= tol)
        rule = f"|err| <= u({adapter.declared.matmul_precision}) * |W|"
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        _fail(adapter, f"{int(bad.sum())} output values differ from W[ids] ({rule}); first at "
              f"{where}: got {got[where]!r}, expected {want[where]!r}", call, expected=oracle_call, **shown)


def _expect_gradient(adapter, got, weights, ids, up, shown: dict, dtype: str, precision: str = "float32", *,
                     call: str = "adapter.weight_grad(W, ids, up)",
                     oracle_call: str = "oracle.gradient(ids % len(W), up, len(W))",
                     scale_by_freq: bool = False, padding_idx: int | None = None) -> None:
    """The weight gradient equals the float64 scatter-add within the summation bound (in the
    weight dtype, or the declared matmul precision when that is coarser). ``scale_by_freq``:
    each row divided by its id's count (every term is divided before the sum: one more
    rounding per term); ``padding_idx``: that row's gradient is zero."""
    vocab, dim = weights.shape
    if got.shape != (vocab, dim):
        _fail(adapter, f"gradient shape {got.shape}, expected the table's {(vocab, dim)}", call,
              expected=oracle_call, **shown)
    if dtype_name(got.dtype) != dtype:
        _fail(adapter, f"gradient dtype {dtype_name(got.dtype)}, expected {dtype}", call, expected=oracle_call, **shown)
    rows = wrapped(ids, vocab)
    exact = oracle.gradient(rows, up, vocab)
    counts = oracle.hit_counts(rows, vocab)
    abs_sums = oracle.abs_sums(rows, up, vocab)
    accumulate = _accumulation_format(precision, dtype)
    if scale_by_freq:
        exact = oracle.gradient_scaled_by_freq(rows, up, vocab)
        abs_sums = abs_sums / np.maximum(counts, 1)[:, None]
    tol = gradient_tolerance(exact, counts, abs_sums, accumulate)
    if scale_by_freq:
        tol = tol + unit_roundoff(accumulate) * abs_sums
    if padding_idx is not None:
        exact = oracle.gradient_with_padding(rows, up, vocab, padding_idx)
        tol[padding_idx % vocab] = 0.0
    err = np.abs(got.astype(np.float64) - exact)
    bad = ~(err <= tol)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        kind = "an untouched row is not zero" if counts[r] == 0 else "differs from the scatter-add"
        _fail(adapter, f"gradient {kind} at row {r} col {c}: got {got[r, c]!r}, exact {exact[r, c]!r}, "
              f"{counts[r]} duplicate ids, tolerance {tol[r, c]:.3g} "
              f"(u*|exact| + gamma_(k-1)*sum|up| in {accumulate})", call, expected=oracle_call, **shown)


def _accumulation_format(matmul_precision: str, dtype: str) -> str:
    """The format a gradient is bounded in: the weight dtype, or the declared matmul
    precision (TF32, bfloat16) when that is coarser."""
    coarser = MATMUL_UNIT_ROUNDOFF.get(matmul_precision, 0.0) > unit_roundoff(dtype)
    return matmul_precision if coarser else dtype


def _labelled_table(vocab: int = 5, dim: int = 3, dtype: str = "float32") -> np.ndarray:
    """Distinct, nonzero rows, so wrap/clamp/zero/NaN results are told apart."""
    return (np.arange(vocab * dim, dtype=np.float64).reshape(vocab, dim) + 1).astype(np_dtype(dtype))


def _labelled_recipe(vocab: int, dim: int, dtype: str = "float32") -> str:
    return f"(np.arange({vocab * dim}, dtype=np.float64).reshape({vocab}, {dim}) + 1).astype(np_dtype({dtype!r}))"


def _needs_dtype(dtype: str, adapter) -> str | None:
    if dtype not in adapter.declared.weight_dtypes:
        return f"{dtype} weights not declared by {adapter.id}"
    return None


def _needs_gradient(adapter) -> str | None:
    return None if _has_gradient(adapter) else f"{adapter.id} declares no gradient (forward-only)"


def _both(conditions, adapter) -> str | None:
    return next((r for c in conditions if (r := c(adapter))), None)


# --- property checks (Hypothesis) --------------------------------------------------------
def _property(adapter, strategy, body, explicit: list[Case], first: list[Case]):
    """Run ``body(case)`` on the ``first`` (smallest, hand-picked) cases, then over
    ``strategy(escalate=...)`` with this adapter's own example database (one adapter's
    failures are never replayed on another), then over the explicit boundary cases.

    Smallest first, so the commonest bugs are reported at their smallest; then generated
    small cases with half the examples (a bug they show shrinks to a few ids); then the full
    space (large and boundary vocabularies, wide and square tables, long batches); an
    explicit boundary case is reported as it is (its snippet rebuilds it from a seed)."""
    for case in first:
        body(case)
    budget = settings.default.max_examples
    database = hypothesis_profiles.database_for(adapter.id)
    for escalate, examples in ((False, max(1, budget // 2)), (True, max(1, budget - budget // 2))):
        settings(database=database, max_examples=examples, deadline=None,  # JIT compiles are slow
                 suppress_health_check=hypothesis_profiles.SUPPRESSED)(given(case=strategy(escalate))(body))()
    for case in explicit:
        body(case)


def _aim(value: float, label: str) -> None:
    """Steer Hypothesis towards larger cases (target()); a no-op for the explicit cases."""
    try:
        target(value, label=label)
    except InvalidArgument:
        pass


def _forward_property(dtype: str, adapter, ctx):
    index_dtypes = _preferred_ids_dtypes(adapter)
    onehot = adapter.variant == "onehot"
    wrap = adapter.declared.negative_index == "wrap"

    def forward_matches_oracle(case):
        ctx.examples += 1
        _aim(float(np.log2(1 + case.ids.size * case.weights.shape[1])), "ids x dim")
        want = oracle.forward(case.weights, wrapped(case.ids, case.vocab))
        shown = case.for_snippet(W="weights", ids="ids")
        _expect_rows(adapter, _lookup(adapter, case.weights, case.ids, shown), want, shown, dtype)

    _property(adapter, lambda escalate: lookup_cases(dtype, index_dtypes, onehot=onehot, negative=wrap,
                                                     escalate=escalate),
              forward_matches_oracle, boundary_cases(dtype, index_dtypes[0], with_upstream=False, onehot=onehot),
              minimal_cases(dtype, index_dtypes[0], with_upstream=False, negative=wrap))


def _gradient_property(dtype: str, adapter, ctx):
    index_dtypes = _preferred_ids_dtypes(adapter)
    onehot = adapter.variant == "onehot"
    wrap = adapter.declared.negative_index == "wrap"

    def gradient_matches_oracle(case):
        ctx.examples += 1
        _aim(float(np.log2(1 + case.ids.size)), "ids")
        shown = case.for_snippet(W="weights", ids="ids", up="upstream")
        got = _grad(adapter, case.weights, case.ids, case.upstream, shown)
        _expect_gradient(adapter, got, case.weights, case.ids, case.upstream, shown, dtype,
                         adapter.declared.matmul_precision)

    def strategy(escalate):
        return lookup_cases(dtype, index_dtypes, max_vocab=6, with_upstream=True, onehot=onehot,
                            negative=wrap, escalate=escalate)

    _property(adapter, strategy, gradient_matches_oracle,
              boundary_cases(dtype, index_dtypes[0], with_upstream=True, onehot=onehot),
              minimal_cases(dtype, index_dtypes[0], with_upstream=True, negative=wrap))


def _twin(adapter):
    """The gather this one-hot adapter must agree with: a built-in id, a ``module:factory``,
    or the id of another adapter made by the same plug-in factory."""
    from harness.registry import known_adapters, load_adapter

    twin = adapter.gather_twin
    base = twin.removesuffix(f"-{adapter.device}") if adapter.device != "cpu" else twin
    if base in known_adapters() or ":" in twin:
        return load_adapter(twin, device=adapter.device)
    if adapter.source and ":" in adapter.source:
        return load_adapter(adapter.source, device=adapter.device, adapter_id=twin)
    raise HarnessError(f"{adapter.id}: gather_twin {twin!r} is neither a registered adapter id, a 'module:factory', "
                       f"nor an adapter made by its own factory {adapter.source!r}")


def _agrees_with_gather(adapter, ctx):
    """The seed's claim: one_hot(idx) @ W equals W[idx], forward and gradient."""
    twin = _twin(adapter)
    dtype = "float32"

    def onehot_agrees_with_gather(case):
        ctx.examples += 1
        shown = case.for_snippet(W="weights", ids="ids", up="upstream")
        mine, theirs = _lookup(adapter, case.weights, case.ids, shown), _lookup(twin, case.weights, case.ids, shown)
        tol = forward_tolerance(theirs, adapter.declared.matmul_precision, dtype)
        same = (_same_bits(mine, theirs) if tol is None
                else mine.shape == theirs.shape and bool(np.all(np.abs(mine - theirs) <= tol)))
        if not same:
            _fail(adapter, f"one-hot forward differs from its gather twin {twin.id}",
                  f"adapter.lookup(W, ids), load_adapter({twin.id!r}).lookup(W, ids)", **shown)
        if not (_has_gradient(adapter) and _has_gradient(twin)):
            return
        g_mine = _grad(adapter, case.weights, case.ids, case.upstream, shown).astype(np.float64)
        g_theirs = _grad(twin, case.weights, case.ids, case.upstream, shown).astype(np.float64)
        vocab = case.vocab
        exact = oracle.gradient(case.ids, case.upstream, vocab)
        accumulate = _accumulation_format(adapter.declared.matmul_precision, dtype)
        tol_g = 2 * gradient_tolerance(exact, oracle.hit_counts(case.ids, vocab),
                                       oracle.abs_sums(case.ids, case.upstream, vocab), accumulate)
        if not np.all(np.abs(g_mine - g_theirs) <= tol_g):
            _fail(adapter, f"one-hot gradient differs from its gather twin {twin.id} beyond "
                  f"both summation bounds", f"adapter.weight_grad(W, ids, up), "
                  f"load_adapter({twin.id!r}).weight_grad(W, ids, up)", **shown)

    def strategy(escalate):
        return lookup_cases(dtype, _preferred_ids_dtypes(adapter), max_vocab=12, with_upstream=True, onehot=True,
                            escalate=escalate)

    _property(adapter, strategy, onehot_agrees_with_gather, [],
              minimal_cases(dtype, _preferred_ids_dtypes(adapter)[0], with_upstream=True))


def _onehot_only(adapter):
    if adapter.variant != "onehot" or not adapter.gather_twin:
        return "compares a one-hot adapter with its gather twin; this adapter is the gather side"
    return None


# --- deterministic checks ----------------------------------------------------------------
def _forward_and_gradient(adapter, weights, ids, up, shown: dict | None = None) -> None:
    """One case, forward and (unless forward-only) gradient, against the oracle."""
    shown = shown or {}
    want = oracle.forward(weights, wrapped(ids, weights.shape[0]))
    _expect_rows(adapter, _lookup(adapter, weights, ids, shown), want, _shown({"W": weights, "ids": ids}, shown))
    if _has_gradient(adapter):
        got = _grad(adapter, weights, ids, up, shown)
        _expect_gradient(adapter, got, weights, ids, up, _shown({"W": weights, "ids": ids, "up": up}, shown),
                         dtype_name(weights.dtype), adapter.declared.matmul_precision)


def _scalar_id(adapter, ctx):
    ids = np.array(2, dtype=_preferred_ids_dtypes(adapter)[0])
    _forward_and_gradient(adapter, _labelled_table(4, 3), ids, np.array([1.0, 2.0, 4.0], dtype=np.float32))


def _empty_batch(adapter, ctx):
    for shape in [(0,), (3, 0)]:
        ids = np.zeros(shape, dtype=_preferred_ids_dtypes(adapter)[0])
        _forward_and_gradient(adapter, _labelled_table(4, 3), ids, np.zeros(shape + (3,), dtype=np.float32))


def _vocab_of_one(adapter, ctx):
    weights = np.array([[1.5, -2.0, 3.25, 0.5]], dtype=np.float32)
    for shape in [(), (2, 3)]:
        ids = np.zeros(shape, dtype=_preferred_ids_dtypes(adapter)[0])
        up = np.arange(np.prod(shape, dtype=int) * 4, dtype=np.float32).reshape(shape + (4,))
        _forward_and_gradient(adapter, weights, ids, up)


def _index_tables(name: str) -> tuple[int, list[np.ndarray]]:
    """(vocab, id arrays) for one index dtype: ids up to the largest the dtype holds (at most
    69999), in a table a few rows larger, so an id read with the wrong sign or width lands on
    another real row (uint8 255 read as int8 is -1, which wraps to the last row: not 255);
    ids in a Fortran-ordered 2-D array and a strided 1-D one."""
    dtype = np.dtype(name)
    top = min(int(np.iinfo(dtype).max), 69_999) if dtype.kind in "iu" else 4
    vocab = top + 8
    grid = np.asfortranarray(np.array([[top, 0, 1], [vocab // 2, top, 2]]).astype(dtype))
    line = layouts.arrange(np.array([1, top, 0, vocab // 3]).astype(dtype), "strided")
    return vocab, [grid, line]


def _index_dtypes(adapter, ctx):
    """Every claimed index dtype gives W[ids]; every other one is rejected with an error."""
    accepted, wrong, errors = [], {}, {}
    for name in CANDIDATE_INDEX_DTYPES:
        vocab, cases = _index_tables(name)
        weights = _labelled_table(vocab, 3)
        _note_call(adapter, "[adapter.lookup(W, ids) for ids in id_arrays]",
                   {"W": _labelled_recipe(vocab, 3), "id_arrays": f"[{', '.join(array_literal(c) for c in cases)}]"})
        try:
            results = [(ids, adapter.lookup(weights, ids)) for ids in cases]
        except Exception as exc:  # any rejection counts; its type is recorded
            errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            continue
        accepted.append(name)
        for ids, got in results:
            want = weights[ids.astype(np.int64)]
            if got.shape != want.shape or not np.array_equal(got, want):
                wrong.setdefault(name, (vocab, ids))
    ctx.observed["index_dtypes"] = accepted
    declared = set(adapter.declared.index_dtypes)
    problems = []
    if wrong:
        problems.append(f"accepted {sorted(wrong)} but returned rows other than W[ids]")
    missing = sorted(declared - set(accepted))
    if missing:
        problems.append("declared but rejected: " + "; ".join(f"{d} ({errors[d]})" for d in missing))
    silent = sorted(set(accepted) - declared)
    if silent:
        problems.append(f"not declared, yet accepted without an error: {silent}")
    if problems:
        bad = next(iter(wrong)) if wrong else (missing or silent)[0]
        vocab, ids = wrong.get(bad) or (_index_tables(bad)[0], _index_tables(bad)[1][0])
        _fail(adapter, "index dtypes: " + " | ".join(problems), "adapter.lookup(W, ids)",
              W=_labelled_recipe(vocab, 3), ids=ids)


# What a bad id can do, in the order a result consistent with several is named.
PROBE_OUTCOMES = ("wrap", "clamp", "zeros", "nan")


def _consistent_outcomes(got: np.ndarray, weights: np.ndarray, bad: int) -> set[str]:
    vocab = weights.shape[0]
    outcomes = set()
    as64 = got.astype(np.float64)
    if np.isnan(as64).all():
        outcomes.add("nan")
    if (as64 == 0).all():
        outcomes.add("zeros")
    if np.array_equal(got, weights[[bad % vocab]]):
        outcomes.add("wrap")
    if np.array_equal(got, weights[[min(max(bad, 0), vocab - 1)]]):
        outcomes.add("clamp")
    return outcomes


def probe_tables(vocab: int) -> list[np.ndarray]:
    """Two tables no outcome can confuse: a bad id's row must follow the table it was given."""
    table_a = _labelled_table(vocab, 3)
    return [table_a, (table_a.astype(np.float64) * -3 + 1000).astype(np.float32)]


def probe_one(adapter, tables: list[np.ndarray], bad: int, index_dtype: str) -> tuple[set[str], str]:
    """What one bad id does, judged against two tables: a result that does not follow the
    table (garbage that happens to be zeros, a row of another call) is ``undefined``."""
    ids = np.array([bad], dtype=index_dtype)
    results = []
    for weights in tables:
        _note_call(adapter, "adapter.lookup(W, ids)", {"W": weights, "ids": ids})
        try:
            results.append(adapter.lookup(weights, ids))
        except Exception as exc:
            if results:
                return {"undefined"}, f"raised for one table but not the other: {type(exc).__name__}"
            return {"raise"}, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]}"
    shape = ids.shape + tables[0].shape[1:]
    if any(r.shape != shape for r in results):
        return {"undefined"}, f"output shape {results[0].shape}, expected {shape}"
    consistent = set.intersection(*(_consistent_outcomes(r, w, bad) for r, w in zip(results, tables, strict=True)))
    if consistent:
        return consistent, "rows " + " / ".join(str(r.astype(np.float64).tolist()) for r in results)
    return {"undefined"}, "rows that do not follow the table: " + " / ".join(
        str(r.astype(np.float64).tolist()) for r in results)


def _probe_bad_ids(adapter, vocab: int, bad_ids: list[int], index_dtype: str) -> dict:
    if needs_isolation(adapter):  # a device-side assert would poison this process
        try:
            return probe_isolated(adapter, vocab, bad_ids, index_dtype)
        except IsolationFailed as exc:  # nothing was observed: no declaration can excuse that
            _fail(adapter, str(exc), "adapter.lookup(W, ids)", cls=WrongEvenIfDeclared,
                  W=probe_tables(vocab)[0], ids=np.array(bad_ids[:1], dtype=index_dtype))
    tables = probe_tables(vocab)
    return {bad: probe_one(adapter, tables, bad, index_dtype) for bad in bad_ids}


def _observe(kind: str, bad_ids: Callable[[int, str], list[int]], adapter, ctx):
    vocab = 5
    index_dtype = _preferred_ids_dtypes(adapter)[0]
    table_a = probe_tables(vocab)[0]
    control = np.array([1, 3], dtype=index_dtype)
    try:  # a control call first: "raise" must mean the bad id raised, not the adapter
        got = adapter.lookup(table_a, control)
    except Exception as exc:
        _fail(adapter, f"the control call with valid ids raised {type(exc).__name__}: {exc}; what a bad "
              f"id does cannot be told", "adapter.lookup(W, ids)", W=table_a, ids=control)
    if got.shape != (2, 3) or not np.array_equal(got, table_a[[1, 3]]):
        _fail(adapter, "the control call with valid ids returned rows other than W[ids]; what a bad id "
              "does cannot be told", "adapter.lookup(W, ids)", W=table_a, ids=control)
    per_id = _probe_bad_ids(adapter, vocab, bad_ids(vocab, index_dtype), index_dtype)
    if not per_id:  # unsigned ids cannot be negative
        ctx.observed[kind] = "n/a"
        return
    common = set.intersection(*(outcomes for outcomes, _ in per_id.values()))
    outcome = next((o for o in ("raise", *PROBE_OUTCOMES, CRASH) if o in common), "undefined")
    ctx.observed[kind] = outcome
    ctx.observed[f"{kind}_detail"] = "; ".join(
        f"id {bad}: {'/'.join(sorted(o))} ({how})" for bad, (o, how) in per_id.items())[:3000]
    if needs_isolation(adapter):
        ctx.observed[f"{kind}_isolated"] = True
    declared = getattr(adapter.declared, kind)
    if declared != "undefined" and outcome != declared:
        worst = next((b for b, (o, _) in per_id.items() if declared not in o), next(iter(per_id)))
        _fail(adapter, f"{kind.replace('_', ' ')}: declared {declared!r}, observed {outcome!r} "
              f"({ctx.observed[f'{kind}_detail']})", "adapter.lookup(W, ids)", W=table_a,
              ids=np.array([worst], dtype=index_dtype))


def _negative_ids(vocab: int, index_dtype: str) -> list[int]:
    return [-1, -2, -vocab] if np.dtype(index_dtype).kind == "i" else []


def _out_of_range_ids(vocab: int, index_dtype: str) -> list[int]:
    huge = min(int(np.iinfo(np.dtype(index_dtype)).max), 2**31 - 1)
    return [vocab, vocab + 1, huge]


def _duplicates_accumulate(adapter, ctx):
    """Duplicate ids add up exactly (powers of two: every sum is exact), others stay zero."""
    weights = _labelled_table(6, 2)
    ids = np.array([[1, 3, 1], [1, 0, 3]], dtype=_preferred_ids_dtypes(adapter)[0])
    up = (2.0 ** np.arange(12, dtype=np.float64)).reshape(2, 3, 2).astype(np.float32)
    want = oracle.gradient(ids, up, 6)
    got = _grad(adapter, weights, ids, up)
    if got.shape != want.shape or not np.array_equal(got.astype(np.float64), want):
        _fail(adapter, "duplicate ids do not accumulate exactly (or untouched rows are not zero): "
              f"got rows {got.astype(np.float64).tolist()}, expected {want.tolist()}",
              "adapter.weight_grad(W, ids, up)", expected="oracle.gradient(ids, up, len(W))",
              W=weights, ids=ids, up=up)


def _gradient_representation(adapter, ctx):
    """Declared sparse gradients are sparse and densify to the oracle; dense ones are dense."""
    weights = _labelled_table(6, 2)
    ids = np.array([4, 1, 4, 4], dtype=_preferred_ids_dtypes(adapter)[0])
    up = np.ones((4, 2), dtype=np.float32)
    call = "adapter.gradient(adapter.prepare_weights(W), adapter.prepare_ids(ids), adapter.prepare_upstream(up))"
    raw = _call(adapter, call, lambda: adapter.gradient(adapter.prepare_weights(weights), adapter.prepare_ids(ids),
                                                        adapter.prepare_upstream(up)),
                {"W": weights, "ids": ids, "up": up})
    sparse = adapter.is_sparse(raw)
    ctx.observed["gradient"] = "sparse" if sparse else "dense"
    if sparse != (adapter.declared.gradient == "sparse"):
        _fail(adapter, f"declared a {adapter.declared.gradient} gradient, got a "
              f"{'sparse' if sparse else 'dense'} one ({type(raw).__name__})", call, W=weights, ids=ids, up=up)
    dense = adapter.to_numpy(raw)
    if not np.array_equal(dense.astype(np.float64), oracle.gradient(ids, up, 6)):
        _fail(adapter, "the densified gradient differs from the scatter-add",
              "adapter.weight_grad(W, ids, up)", W=weights, ids=ids, up=up)


def _weights_unchanged(adapter, ctx):
    """Forward and gradient leave the table as it was: the caller's array and the adapter's
    own prepared copy (a lookup that renormalises rows in place is not a plain gather)."""
    weights = _labelled_table(7, 3)
    ids = np.array([[0, 3, 3], [6, 0, 2]], dtype=_preferred_ids_dtypes(adapter)[0])
    up = np.full((2, 3, 3), 0.5, dtype=np.float32)
    pristine = weights.copy()
    backward = ("adapter.gradient(w, adapter.prepare_ids(ids), adapter.prepare_upstream(up)), "
                if _has_gradient(adapter) else "")
    call = (f"(w := adapter.prepare_weights(W), adapter.forward(w, adapter.prepare_ids(ids)), {backward}"
            f"adapter.table_of(w))[-1]")

    def use_twice():
        w = adapter.prepare_weights(weights)
        adapter.synchronize(adapter.forward(w, adapter.prepare_ids(ids)))
        if _has_gradient(adapter):
            adapter.synchronize(adapter.gradient(w, adapter.prepare_ids(ids), adapter.prepare_upstream(up)))
        return adapter.table_of(w)

    after = _call(adapter, call, use_twice, {"W": weights, "ids": ids, "up": up})
    if not _same_bits(np.asarray(after), pristine):
        _fail(adapter, "the table held by the adapter changed during forward/gradient: "
              f"{np.asarray(after).astype(np.float64).tolist()}", call, W=pristine, ids=ids, up=up)


def _inputs_not_cached(adapter, ctx):
    """The same ids against two tables, and two upstreams: each result follows its own
    inputs (no table or gradient kept from an earlier call)."""
    ids = np.array([[0, 3], [6, 3]], dtype=_preferred_ids_dtypes(adapter)[0])
    first = _labelled_table(7, 3)
    second = (first.astype(np.float64) * -2 + 0.5).astype(np.float32)
    for weights in (first, second, first):
        want = oracle.forward(weights, ids)
        _expect_rows(adapter, _lookup(adapter, weights, ids), want, {"W": weights, "ids": ids})
    if _has_gradient(adapter):
        for up in (np.ones((2, 2, 3), np.float32), np.full((2, 2, 3), -4.0, np.float32)):
            got = _grad(adapter, first, ids, up)
            _expect_gradient(adapter, got, first, ids, up, {"W": first, "ids": ids, "up": up}, "float32")


def _large_vocab_and_batch(adapter, ctx):
    """A table past 2**16 rows and (for gathers) a batch past any blocking size, with every
    boundary id: forward and gradient against the oracle."""
    index_dtype = _preferred_ids_dtypes(adapter)[0]
    vocab, dim = 70_000, 17
    n = max(1, min(5000, ONEHOT_CELLS // vocab)) if adapter.variant == "onehot" else 5000
    rng = np.random.default_rng(11)
    weights = rng.standard_normal((vocab, dim)).astype(np.float32)
    ids = rng.integers(0, vocab, size=n)
    edges = boundary_ids(vocab)
    ids[: len(edges)] = edges
    ids = ids.astype(index_dtype)
    up = rng.standard_normal((n, dim)).astype(np.float32)
    shown = {"W": f"(rng := np.random.default_rng(11)).standard_normal(({vocab}, {dim})).astype(np.float32)",
             "ids": f"np.concatenate([{edges}, rng.integers(0, {vocab}, size={n})[{len(edges)}:]])"
                    f".astype({index_dtype!r})",
             "up": f"rng.standard_normal(({n}, {dim})).astype(np.float32)"}
    _forward_and_gradient(adapter, weights, ids, up, shown)


def _nan_inf_isolated(adapter, ctx):
    """NaN/Inf in rows that are not looked up must not reach the output."""
    weights = _labelled_table(6, 3)
    weights[4] = np.nan
    weights[5] = [np.inf, -np.inf, np.inf]
    ids = np.array([0, 1, 2, 3, 0], dtype=_preferred_ids_dtypes(adapter)[0])
    want = oracle.forward(weights, ids)
    _expect_rows(adapter, _lookup(adapter, weights, ids), want, {"W": weights, "ids": ids})


def _negative_zero(adapter, ctx):
    weights = _labelled_table(4, 3)
    weights[2] = -0.0
    ids = np.array([2, 0], dtype=_preferred_ids_dtypes(adapter)[0])
    want = oracle.forward(weights, ids)
    _expect_rows(adapter, _lookup(adapter, weights, ids), want, {"W": weights, "ids": ids})


def _subnormals(dtype: str, adapter, ctx):
    weights = _labelled_table(4, 3, dtype)
    tiny = float(ml_dtypes.finfo(np_dtype(dtype)).smallest_subnormal)
    weights[1] = (np.array([1.0, 2.0, 3.0]) * tiny).astype(np_dtype(dtype))
    ids = np.array([1, 0, 1], dtype=_preferred_ids_dtypes(adapter)[0])
    want = oracle.forward(weights, ids)
    _expect_rows(adapter, _lookup(adapter, weights, ids), want, {"W": weights, "ids": ids})


# Calls of the determinism check: a race between threads (atomic adds in another order) shows
# only when the threads really overlap, which a loaded machine makes rare in any two calls.
DETERMINISM_CALLS = 16


def _deterministic(adapter, ctx):
    """The same call repeated gives bitwise-equal forward and gradient (CPU), and both are right."""
    index_dtype = _preferred_ids_dtypes(adapter)[0]
    rng = np.random.default_rng(7)
    # Enough duplicates per row that threads scatter-adding them overlap even on a loaded machine.
    weights = rng.standard_normal((7, 16)).astype(np.float32)
    ids = rng.integers(0, 7, size=3000).astype(index_dtype)
    up = rng.standard_normal((3000, 16)).astype(np.float32)
    # The same draws, as code, for the repro snippet.
    shown = dict(rng="np.random.default_rng(7)", W="rng.standard_normal((7, 16)).astype(np.float32)",
                 ids=f"rng.integers(0, 7, size=3000).astype({index_dtype!r})",
                 up="rng.standard_normal((3000, 16)).astype(np.float32)")
    calls = [("forward", lambda: _lookup(adapter, weights, ids, shown), "adapter.lookup(W, ids)")]
    if _has_gradient(adapter):
        calls.append(("gradient", lambda: _grad(adapter, weights, ids, up, shown), "adapter.weight_grad(W, ids, up)"))
    for what, call, text in calls:
        first = call()
        for k in range(2, DETERMINISM_CALLS + 1):
            if not _same_bits(first, call()):
                _fail(adapter, f"{what} differs between identical calls (the first and call {k} of up to "
                      f"{DETERMINISM_CALLS})", f"{text} - {text}", **shown)
    _forward_and_gradient(adapter, weights, ids, up, shown)


def sequential_sum_of_ones(dtype: str, hits: int) -> float:
    """Where adding 1.0 ``hits`` times in ``dtype`` (round to nearest) ends: it stalls once
    1.0 is below half a unit in the last place (2048 in float16, 256 in bfloat16)."""
    total = np.zeros((), dtype=np_dtype(dtype))
    one = np.ones((), dtype=np_dtype(dtype))
    for _ in range(hits):
        nxt = (total + one).astype(np_dtype(dtype))
        if nxt == total:
            break
        total = nxt
    return float(total)


def _low_precision_accumulation(dtype: str, hits: int, adapter, ctx):
    """Many unit contributions to one row: the exact sum is representable in ``dtype``, so an
    implementation that accumulates in float32 returns it; one that accumulates in the
    weight dtype stops between the saturation point and the exact sum. Anything else (other
    rows touched, a sum outside that range) is wrong whatever the adapter declares."""
    weights = np.zeros((3, 2), dtype=np_dtype(dtype))
    ids = np.ones(hits, dtype=_preferred_ids_dtypes(adapter)[0])
    up = np.ones((hits, 2), dtype=np_dtype(dtype))
    got = _grad(adapter, weights, ids, up).astype(np.float64)
    ctx.observed[f"accumulated_{dtype}"] = float(got[1, 0])
    bound = unit_roundoff(dtype) * hits  # one final rounding of the exact sum
    stall = sequential_sum_of_ones(dtype, hits)
    call = "adapter.weight_grad(W, ids, up)"
    if got.shape != (3, 2) or np.any(got[[0, 2]] != 0) or got[1, 0] != got[1, 1] \
            or not stall - bound <= got[1, 0] <= hits + bound:
        _fail(adapter, f"{hits} unit gradients into row 1 of a {dtype} table give {got.tolist()}: not "
              f"{hits} (exact) nor between {stall:g} (accumulation in {dtype} stalls there) and {hits}",
              call, cls=WrongEvenIfDeclared, W=weights, ids=ids, up=up)
    if not abs(got[1, 0] - hits) <= bound:
        _fail(adapter, f"{hits} unit gradients into one {dtype} row sum to {got[1, 0]!r}, not {hits} "
              f"(accumulation in {dtype} saturates)", call, W=weights, ids=ids, up=up)


def _forward_dtype_note(dtype):
    return f"forward equals W[ids] (shape, dtype, values) for {dtype} weights, ids of rank 0-3 in any layout"


# Parametrised checks are partials, not closures made at import: the functions run (and can be
# traced or mutation-tested) when a check runs.
CHECKS: list[Check] = [
    *[Check(f"forward[{d}]", _forward_dtype_note(d), partial(_forward_property, d),
            partial(_needs_dtype, d)) for d in WEIGHT_DTYPES],
    *[Check(f"gradient[{d}]", f"gradient equals the float64 scatter-add within the {d} summation bound",
            partial(_gradient_property, d), partial(_both, (_needs_gradient, partial(_needs_dtype, d))))
      for d in WEIGHT_DTYPES],
    Check("scalar_id", "a 0-d id gives one row and its gradient", _scalar_id),
    Check("empty_batch", "empty id arrays give empty outputs and a zero gradient", _empty_batch),
    Check("vocab_of_one", "a one-row table, with a 0-d and a 2-d id array", _vocab_of_one),
    Check("large_vocab_and_batch", "a 70000-row table and 5000 ids (every 2**k boundary id): forward and "
          "gradient against the oracle", _large_vocab_and_batch),
    Check("index_dtypes", "claimed index dtypes give W[ids] up to their largest id, others are rejected",
          _index_dtypes),
    Check("negative_index", "what ids -1, -2 and -V do, one at a time, matches the declaration",
          partial(_observe, "negative_index", _negative_ids)),
    Check("out_of_range", "what ids V, V+1 and 2**31-1 do, one at a time, matches the declaration",
          partial(_observe, "out_of_range", _out_of_range_ids)),
    Check("duplicates_accumulate", "duplicate ids add up exactly; untouched rows are zero", _duplicates_accumulate,
          _needs_gradient),
    Check("gradient_representation", "sparse/dense gradient as declared; densified equals scatter-add",
          _gradient_representation, _needs_gradient),
    Check("weights_unchanged", "forward and gradient leave the table (caller's and adapter's) as it was",
          _weights_unchanged),
    Check("inputs_not_cached", "the same ids against two tables (and two upstreams) follow each one",
          _inputs_not_cached),
    Check("onehot_agrees_with_gather", "one_hot(idx) @ W equals the framework's own gather",
          _agrees_with_gather, _onehot_only),
    Check("nan_inf_isolated", "NaN/Inf rows that are not looked up do not leak into the output", _nan_inf_isolated),
    Check("negative_zero_preserved", "a -0.0 row comes back as -0.0", _negative_zero),
    *[Check(f"subnormals_preserved[{d}]", f"subnormal {d} rows come back unchanged", partial(_subnormals, d),
            partial(_needs_dtype, d))
      for d in WEIGHT_DTYPES],
    Check("deterministic", "two identical calls give bitwise-equal results (CPU), equal to the oracle",
          _deterministic,
          lambda a: None if a.device == "cpu" else "bitwise determinism is required on CPU only: GPU "
          "scatter-adds use atomics unless a framework's deterministic mode is on"),
    Check("low_precision_accumulation[float16]", "3000 duplicate unit gradients sum to 3000 in float16",
          partial(_low_precision_accumulation, "float16", 3000),
          partial(_both, (_needs_gradient, partial(_needs_dtype, "float16")))),
    Check("low_precision_accumulation[bfloat16]", "1000 duplicate unit gradients sum to 1000 in bfloat16",
          partial(_low_precision_accumulation, "bfloat16", 1000),
          partial(_both, (_needs_gradient, partial(_needs_dtype, "bfloat16")))),
]
# The layer options' and the bags' checks build on the helpers above, so their modules come last.
from harness.bag_checks import BAG_CHECKS  # noqa: E402
from harness.option_checks import OPTION_CHECKS  # noqa: E402

CHECKS += OPTION_CHECKS + BAG_CHECKS
CHECKS_BY_NAME = {c.name: c for c in CHECKS}


def validate_declaration(adapter: EmbeddingAdapter) -> None:
    """Every check a declaration names must exist: a typo would silently declare nothing."""
    declared = adapter.declared
    named = {"deviations": set(declared.deviations), "not_applicable": set(declared.not_applicable),
             "platform_deviations": {n for rule in declared.platform_deviations for n in rule.check_names()}}
    for field_name, names in named.items():
        unknown = sorted(names - set(CHECKS_BY_NAME))
        if unknown:
            raise HarnessError(f"{adapter.id}: declared.{field_name} names unknown check(s) {unknown}; "
                               f"'python -m harness checks' lists them")
    unknown_options = sorted(set(declared.options) - set(LAYER_OPTIONS))
    if unknown_options:
        raise HarnessError(f"{adapter.id}: declared.options names unknown option(s) {unknown_options}; "
                           f"use {list(LAYER_OPTIONS)}")
    if declared.bags is not None and not set(declared.bags.modes) <= set(BAG_MODES):
        raise HarnessError(f"{adapter.id}: declared.bags.modes {list(declared.bags.modes)}: use {list(BAG_MODES)}")
    if declared.gradient not in ("dense", "sparse", "none"):
        raise HarnessError(f"{adapter.id}: declared.gradient is {declared.gradient!r}; use 'dense', "
                           f"'sparse' or 'none' (forward-only)")


def family_of(adapter: EmbeddingAdapter) -> str:
    return "bag" if adapter.declared.bags is not None else "lookup"


def skip_reason(adapter: EmbeddingAdapter, check: Check) -> str | None:
    if check.name in adapter.declared.not_applicable:
        return adapter.declared.not_applicable[check.name]
    family = family_of(adapter)
    if check.family != family:
        return f"a {check.family} check; {adapter.id} is a {family} adapter"
    return check.applies(adapter)


def _describe_failure(exc: BaseException) -> str:
    """The assertion message (with Hypothesis' falsifying example); for a crash, the tail of
    its traceback too, which names the adapter line that broke."""
    subs = _sub_exceptions(exc)
    if subs:  # Hypothesis found several distinct failures: each one
        parts = [f"--- failure {i} of {len(subs)} ---\n{_describe_failure(sub)}" for i, sub in enumerate(subs, 1)]
        return f"{len(subs)} distinct failures\n" + "\n".join(parts)
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, AssertionError):
        return text
    cause = exc.__cause__ if isinstance(exc, AdapterCrash) and exc.__cause__ is not None else exc
    frames = "".join(traceback.format_tb(cause.__traceback__)[-3:]).rstrip()
    return f"{text}\n{frames}"


def _sub_exceptions(exc: BaseException) -> tuple:
    """The failures an exception group holds (ExceptionGroup, or its backport before 3.11)."""
    subs = getattr(exc, "exceptions", None)
    return tuple(subs) if isinstance(subs, (tuple, list)) else ()


def _excusable(exc: BaseException) -> bool:
    """Whether a declared deviation may account for this failure (for several, for each one)."""
    subs = _sub_exceptions(exc)
    if subs:
        return all(_excusable(sub) for sub in subs)
    return getattr(exc, "excusable", True)


def run_check(adapter: EmbeddingAdapter, check: Check | str) -> CheckResult:
    """Run one check and classify it; never raises for adapter misbehaviour."""
    check = CHECKS_BY_NAME[check] if isinstance(check, str) else check
    reason = skip_reason(adapter, check)
    if reason:
        return CheckResult(check.name, "not_applicable", reason)
    ctx = Context()
    deviation = declared_here(adapter).deviations.get(check.name)
    started = time.perf_counter()
    try:
        check.run(adapter, ctx)
    except Exception as exc:  # an adapter crash is a failure of that adapter, not of the run
        elapsed = time.perf_counter() - started
        detail = _describe_failure(exc)
        if deviation and _excusable(exc):
            return CheckResult(check.name, "xfailed", f"declared deviation: {deviation}\nobserved: {detail}",
                               ctx.examples, elapsed, ctx.observed)
        if deviation:
            detail = f"declared deviation: {deviation}; but this is not that deviation:\n{detail}"
        return CheckResult(check.name, "failed", detail, ctx.examples, elapsed, ctx.observed)
    elapsed = time.perf_counter() - started
    if deviation:
        return CheckResult(check.name, "failed", f"declared deviation did not occur: {deviation}",
                           ctx.examples, elapsed, ctx.observed)
    return CheckResult(check.name, "passed", "", ctx.examples, elapsed, ctx.observed)


def check_adapter(adapter: EmbeddingAdapter, checks: list[str] | None = None) -> list[CheckResult]:
    """Every check (or the named ones) on one adapter: the notebook/script front door."""
    validate_declaration(adapter)
    unknown = sorted(set(checks or []) - set(CHECKS_BY_NAME))
    if unknown:
        raise HarnessError(f"unknown check(s) {unknown}; 'python -m harness checks' lists them")
    selected = [CHECKS_BY_NAME[c] for c in checks] if checks else CHECKS
    return [run_check(adapter, c) for c in selected]
