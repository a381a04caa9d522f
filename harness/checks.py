"""The conformance checks, framework-neutral and pytest-free.

Each check takes an adapter and raises ``ConformanceFailure`` (an AssertionError whose
message ends with a paste-able reproducing snippet) when the adapter breaks the gather
semantics or its own declaration. ``run_check`` turns that into a status, honouring the
adapter's declared deviations (expected failures, strict: a deviation that does not occur
is a failure) and not-applicable checks (skips with a reason).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np
from hypothesis import given

from harness import oracle
from harness.adapter import EmbeddingAdapter
from harness.dtypes import CANDIDATE_INDEX_DTYPES, WEIGHT_DTYPES, dtype_name, np_dtype, unit_roundoff
from harness.repro import snippet
from harness.strategies import Case, lookup_cases
from harness.tolerance import forward_tolerance, gradient_tolerance


class ConformanceFailure(AssertionError):
    """An observed behaviour that contradicts gather semantics or the declaration."""


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


@dataclass
class CheckResult:
    check: str
    status: str  # passed | failed | xfailed | skipped
    detail: str = ""
    examples: int = 0
    duration_s: float = 0.0
    observed: dict = field(default_factory=dict)


# --- helpers ---------------------------------------------------------------------------
def _preferred_ids_dtypes(adapter: EmbeddingAdapter) -> tuple[str, ...]:
    ints = [d for d in adapter.declared.index_dtypes if d in ("int32", "int64")]
    return tuple(ints or [d for d in adapter.declared.index_dtypes if d != "float32"][:1] or ["int64"])


def _fail(adapter, message: str, call: str, **arrays) -> None:
    raise ConformanceFailure(f"{adapter.id}: {message}\n--- reproduce ---\n{snippet(adapter, call, **arrays)}")


def _bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).view(f"u{array.dtype.itemsize}")


def _expect_rows(adapter, got, want, weights, ids, dtype: str | None = None) -> None:
    """Output shape idx.shape + (dim,), the weight dtype, and rows equal to W[idx]."""
    call = "adapter.lookup(W, ids), oracle.forward(W, ids)"
    if got.shape != want.shape:
        _fail(adapter, f"output shape {got.shape}, expected ids.shape + (dim,) = {want.shape}",
              call, W=weights, ids=ids)
    if dtype_name(got.dtype) != dtype_name(want.dtype):
        _fail(adapter, f"output dtype {dtype_name(got.dtype)}, expected the weight dtype "
              f"{dtype_name(want.dtype)}", call, W=weights, ids=ids)
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
              f"{where}: got {got[where]!r}, expected {want[where]!r}", call, W=weights, ids=ids)


def _expect_gradient(adapter, got, case: Case, dtype: str) -> None:
    call = "adapter.weight_grad(W, ids, up), oracle.gradient(ids, up, len(W))"
    arrays = dict(W=case.weights, ids=case.ids, up=case.upstream)
    vocab, dim = case.weights.shape
    if got.shape != (vocab, dim):
        _fail(adapter, f"gradient shape {got.shape}, expected the table's {(vocab, dim)}", call, **arrays)
    if dtype_name(got.dtype) != dtype:
        _fail(adapter, f"gradient dtype {dtype_name(got.dtype)}, expected {dtype}", call, **arrays)
    exact = oracle.gradient(case.ids, case.upstream, vocab)
    counts = oracle.hit_counts(case.ids, vocab)
    tol = gradient_tolerance(exact, counts, oracle.abs_sums(case.ids, case.upstream, vocab), dtype)
    err = np.abs(got.astype(np.float64) - exact)
    bad = ~(err <= tol)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        kind = "an untouched row is not zero" if counts[r] == 0 else "differs from the scatter-add"
        _fail(adapter, f"gradient {kind} at row {r} col {c}: got {got[r, c]!r}, exact {exact[r, c]!r}, "
              f"{counts[r]} duplicate ids, tolerance {tol[r, c]:.3g} "
              f"(u*|exact| + gamma_(k-1)*sum|up|)", call, **arrays)


def _labelled_table(vocab: int = 5, dim: int = 3, dtype: str = "float32") -> np.ndarray:
    """Distinct, nonzero rows, so wrap/clamp/zero/NaN results are told apart."""
    return (np.arange(vocab * dim, dtype=np.float64).reshape(vocab, dim) + 1).astype(np_dtype(dtype))


def _needs_dtype(dtype: str):
    def applies(adapter):
        if dtype not in adapter.declared.weight_dtypes:
            return f"{dtype} weights not declared by {adapter.id}"
        return None

    return applies


# --- property checks (Hypothesis) --------------------------------------------------------
def _forward_property(dtype: str):
    def run(adapter, ctx):
        @given(case=lookup_cases(dtype, _preferred_ids_dtypes(adapter)))
        def forward_matches_oracle(case):
            ctx.examples += 1
            got = adapter.lookup(case.weights, case.ids)
            _expect_rows(adapter, got, oracle.forward(case.weights, case.ids), case.weights, case.ids, dtype)

        forward_matches_oracle()

    return run


def _gradient_property(dtype: str):
    def run(adapter, ctx):
        @given(case=lookup_cases(dtype, _preferred_ids_dtypes(adapter), max_vocab=6, with_upstream=True))
        def gradient_matches_oracle(case):
            ctx.examples += 1
            got = adapter.weight_grad(case.weights, case.ids, case.upstream)
            _expect_gradient(adapter, got, case, dtype)

        gradient_matches_oracle()

    return run


def _twin(adapter):
    from harness.registry import load_adapter

    return load_adapter(adapter.gather_twin, device=adapter.device)


def _agrees_with_gather(adapter, ctx):
    """The seed's claim: one_hot(idx) @ W equals W[idx], forward and gradient."""
    twin = _twin(adapter)
    dtype = "float32"

    @given(case=lookup_cases(dtype, _preferred_ids_dtypes(adapter), max_vocab=12, with_upstream=True))
    def onehot_agrees_with_gather(case):
        ctx.examples += 1
        arrays = dict(W=case.weights, ids=case.ids)
        mine, theirs = adapter.lookup(case.weights, case.ids), twin.lookup(case.weights, case.ids)
        tol = forward_tolerance(theirs, adapter.declared.matmul_precision, dtype)
        same = (np.array_equal(_bits(mine), _bits(theirs)) if tol is None
                else bool(np.all(np.abs(mine - theirs) <= tol)))
        if mine.shape != theirs.shape or not same:
            _fail(adapter, f"one-hot forward differs from its gather twin {twin.id}",
                  f"adapter.lookup(W, ids), load_adapter({twin.id!r}).lookup(W, ids)", **arrays)
        g_mine = adapter.weight_grad(case.weights, case.ids, case.upstream).astype(np.float64)
        g_theirs = twin.weight_grad(case.weights, case.ids, case.upstream).astype(np.float64)
        vocab = case.vocab
        exact = oracle.gradient(case.ids, case.upstream, vocab)
        tol_g = 2 * gradient_tolerance(exact, oracle.hit_counts(case.ids, vocab),
                                       oracle.abs_sums(case.ids, case.upstream, vocab), dtype)
        if not np.all(np.abs(g_mine - g_theirs) <= tol_g):
            _fail(adapter, f"one-hot gradient differs from its gather twin {twin.id} beyond "
                  f"both summation bounds", f"adapter.weight_grad(W, ids, up), "
                  f"load_adapter({twin.id!r}).weight_grad(W, ids, up)", **arrays, up=case.upstream)

    onehot_agrees_with_gather()


def _onehot_only(adapter):
    if adapter.variant != "onehot" or not adapter.gather_twin:
        return "compares a one-hot adapter with its gather twin; this adapter is the gather side"
    return None


# --- deterministic checks ----------------------------------------------------------------
def _scalar_id(adapter, ctx):
    weights = _labelled_table(4, 3)
    ids = np.array(2, dtype=_preferred_ids_dtypes(adapter)[0])
    _expect_rows(adapter, adapter.lookup(weights, ids), oracle.forward(weights, ids), weights, ids)
    up = np.array([1.0, 2.0, 4.0], dtype=np.float32)
    _expect_gradient(adapter, adapter.weight_grad(weights, ids, up), Case(weights, ids, up), "float32")


def _empty_batch(adapter, ctx):
    weights = _labelled_table(4, 3)
    for shape in [(0,), (3, 0)]:
        ids = np.zeros(shape, dtype=_preferred_ids_dtypes(adapter)[0])
        _expect_rows(adapter, adapter.lookup(weights, ids), oracle.forward(weights, ids), weights, ids)
        up = np.zeros(shape + (3,), dtype=np.float32)
        _expect_gradient(adapter, adapter.weight_grad(weights, ids, up), Case(weights, ids, up), "float32")


def _vocab_of_one(adapter, ctx):
    weights = np.array([[1.5, -2.0, 3.25, 0.5]], dtype=np.float32)
    for shape in [(), (2, 3)]:
        ids = np.zeros(shape, dtype=_preferred_ids_dtypes(adapter)[0])
        _expect_rows(adapter, adapter.lookup(weights, ids), oracle.forward(weights, ids), weights, ids)
        up = np.arange(np.prod(shape, dtype=int) * 4, dtype=np.float32).reshape(shape + (4,))
        _expect_gradient(adapter, adapter.weight_grad(weights, ids, up), Case(weights, ids, up), "float32")


def _index_dtypes(adapter, ctx):
    """Every claimed index dtype gives W[ids]; every other one is rejected with an error."""
    weights = _labelled_table(5, 3)
    accepted, wrong, errors = [], [], {}
    for name in CANDIDATE_INDEX_DTYPES:
        ids = np.array([[1, 0], [3, 3]], dtype=name)
        try:
            got = adapter.lookup(weights, ids)
        except Exception as exc:  # any rejection counts; its type is recorded
            errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            continue
        accepted.append(name)
        want = weights[ids.astype(np.int64)]
        if got.shape != want.shape or not np.array_equal(got, want):
            wrong.append(name)
    ctx.observed["index_dtypes"] = accepted
    declared = set(adapter.declared.index_dtypes)
    problems = []
    if wrong:
        problems.append(f"accepted {wrong} but returned rows other than W[ids]")
    missing = sorted(declared - set(accepted))
    if missing:
        problems.append("declared but rejected: " + "; ".join(f"{d} ({errors[d]})" for d in missing))
    silent = sorted(set(accepted) - declared)
    if silent:
        problems.append(f"not declared, yet accepted without an error: {silent}")
    if problems:
        bad = (wrong or missing or silent)[0]
        _fail(adapter, "index dtypes: " + " | ".join(problems), "adapter.lookup(W, ids)",
              W=weights, ids=np.array([[1, 0], [3, 3]], dtype=bad))


def classify_outcome(adapter, weights: np.ndarray, ids: np.ndarray, wrap_rows, clamp_rows) -> tuple[str, str]:
    """What an adapter does with ids outside [0, vocab): raise, wrap, clamp, nan, zeros."""
    try:
        got = adapter.lookup(weights, ids)
    except Exception as exc:
        return "raise", f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]}"
    got64 = got.astype(np.float64)
    if got.shape != ids.shape + weights.shape[1:]:
        return "undefined", f"output shape {got.shape}"
    if np.isnan(got64).all():
        return "nan", "NaN rows"
    if (got64 == 0).all():
        return "zeros", "zero rows"
    if np.array_equal(got, weights[wrap_rows]):
        return "wrap", f"rows {list(wrap_rows)}"
    if np.array_equal(got, weights[clamp_rows]):
        return "clamp", f"rows {list(clamp_rows)}"
    return "undefined", f"got {got64.tolist()}"


def _observe(kind: str, ids: list[int], wrap_rows: list[int], clamp_rows: list[int]):
    def run(adapter, ctx):
        weights = _labelled_table(5, 3)
        ids_array = np.array(ids, dtype=_preferred_ids_dtypes(adapter)[0])
        outcome, how = classify_outcome(adapter, weights, ids_array, wrap_rows, clamp_rows)
        ctx.observed[kind] = outcome
        ctx.observed[f"{kind}_detail"] = how
        declared = getattr(adapter.declared, kind)
        if declared != "undefined" and outcome != declared:
            _fail(adapter, f"{kind.replace('_', ' ')} ids {ids}: declared {declared!r}, observed "
                  f"{outcome!r} ({how})", "adapter.lookup(W, ids)", W=weights, ids=ids_array)

    return run


def _duplicates_accumulate(adapter, ctx):
    """Duplicate ids add up exactly (powers of two: every sum is exact), others stay zero."""
    weights = _labelled_table(6, 2)
    ids = np.array([[1, 3, 1], [1, 0, 3]], dtype=_preferred_ids_dtypes(adapter)[0])
    up = (2.0 ** np.arange(12, dtype=np.float64)).reshape(2, 3, 2).astype(np.float32)
    got = adapter.weight_grad(weights, ids, up)
    want = oracle.gradient(ids, up, 6)
    if got.shape != want.shape or not np.array_equal(got.astype(np.float64), want):
        _fail(adapter, "duplicate ids do not accumulate exactly (or untouched rows are not zero): "
              f"got rows {got.astype(np.float64).tolist()}, expected {want.tolist()}",
              "adapter.weight_grad(W, ids, up), oracle.gradient(ids, up, len(W))", W=weights, ids=ids, up=up)


def _gradient_representation(adapter, ctx):
    """Declared sparse gradients are sparse and densify to the oracle; dense ones are dense."""
    weights = _labelled_table(6, 2)
    ids = np.array([4, 1, 4, 4], dtype=_preferred_ids_dtypes(adapter)[0])
    up = np.ones((4, 2), dtype=np.float32)
    raw = adapter.gradient(adapter.prepare_weights(weights), adapter.prepare_ids(ids), adapter.prepare_upstream(up))
    sparse = adapter.is_sparse(raw)
    ctx.observed["gradient"] = "sparse" if sparse else "dense"
    if sparse != (adapter.declared.gradient == "sparse"):
        _fail(adapter, f"declared a {adapter.declared.gradient} gradient, got a "
              f"{'sparse' if sparse else 'dense'} one ({type(raw).__name__})",
              "adapter.gradient(adapter.prepare_weights(W), adapter.prepare_ids(ids), "
              "adapter.prepare_upstream(up))", W=weights, ids=ids, up=up)
    dense = adapter.to_numpy(raw)
    if not np.array_equal(dense.astype(np.float64), oracle.gradient(ids, up, 6)):
        _fail(adapter, "the densified gradient differs from the scatter-add",
              "adapter.weight_grad(W, ids, up)", W=weights, ids=ids, up=up)


def _nan_inf_isolated(adapter, ctx):
    """NaN/Inf in rows that are not looked up must not reach the output."""
    weights = _labelled_table(6, 3)
    weights[4] = np.nan
    weights[5] = [np.inf, -np.inf, np.inf]
    ids = np.array([0, 1, 2, 3, 0], dtype=_preferred_ids_dtypes(adapter)[0])
    _expect_rows(adapter, adapter.lookup(weights, ids), oracle.forward(weights, ids), weights, ids)


def _negative_zero(adapter, ctx):
    weights = _labelled_table(4, 3)
    weights[2] = -0.0
    ids = np.array([2, 0], dtype=_preferred_ids_dtypes(adapter)[0])
    _expect_rows(adapter, adapter.lookup(weights, ids), oracle.forward(weights, ids), weights, ids)


def _subnormals(dtype: str):
    def run(adapter, ctx):
        weights = _labelled_table(4, 3, dtype)
        tiny = float(ml_dtypes.finfo(np_dtype(dtype)).smallest_subnormal)
        weights[1] = (np.array([1.0, 2.0, 3.0]) * tiny).astype(np_dtype(dtype))
        ids = np.array([1, 0, 1], dtype=_preferred_ids_dtypes(adapter)[0])
        _expect_rows(adapter, adapter.lookup(weights, ids), oracle.forward(weights, ids), weights, ids)

    return run


def _deterministic(adapter, ctx):
    """The same call twice gives bitwise-equal forward and gradient (CPU)."""
    index_dtype = _preferred_ids_dtypes(adapter)[0]
    rng = np.random.default_rng(7)
    weights = rng.standard_normal((7, 4)).astype(np.float32)
    ids = rng.integers(0, 7, size=300).astype(index_dtype)
    up = rng.standard_normal((300, 4)).astype(np.float32)
    # The same draws, as code, for the repro snippet.
    made = "np.random.default_rng(7)"
    arrays = dict(rng=made, W="rng.standard_normal((7, 4)).astype(np.float32)",
                  ids=f"rng.integers(0, 7, size=300).astype({index_dtype!r})",
                  up="rng.standard_normal((300, 4)).astype(np.float32)")
    for what, call in [("forward", lambda: adapter.lookup(weights, ids)),
                       ("gradient", lambda: adapter.weight_grad(weights, ids, up))]:
        first, second = call(), call()
        if not np.array_equal(_bits(first), _bits(second)):
            _fail(adapter, f"{what} differs between two identical calls",
                  "adapter.weight_grad(W, ids, up) - adapter.weight_grad(W, ids, up)", **arrays)


def _low_precision_accumulation(dtype: str, hits: int):
    """Many unit contributions to one row: the exact sum is representable in ``dtype``, so an
    implementation that accumulates in float32 returns it; one that accumulates in the
    weight dtype saturates where adding 1 no longer changes the sum."""

    def run(adapter, ctx):
        weights = np.zeros((3, 2), dtype=np_dtype(dtype))
        ids = np.ones(hits, dtype=_preferred_ids_dtypes(adapter)[0])
        up = np.ones((hits, 2), dtype=np_dtype(dtype))
        got = adapter.weight_grad(weights, ids, up).astype(np.float64)
        ctx.observed[f"accumulated_{dtype}"] = float(got[1, 0])
        bound = unit_roundoff(dtype) * hits  # one final rounding of the exact sum
        if not np.all(np.abs(got[1] - hits) <= bound) or np.any(got[[0, 2]] != 0):
            _fail(adapter, f"{hits} unit gradients into one {dtype} row sum to {got[1, 0]!r}, not {hits} "
                  f"(accumulation in {dtype} saturates)", "adapter.weight_grad(W, ids, up)[1]",
                  W=weights, ids=ids, up=up)

    return run


def _forward_dtype_note(dtype):
    return f"forward equals W[ids] (shape, dtype, values) for {dtype} weights, ids of rank 0-3"


CHECKS: list[Check] = [
    *[Check(f"forward[{d}]", _forward_dtype_note(d), _forward_property(d), _needs_dtype(d)) for d in WEIGHT_DTYPES],
    *[Check(f"gradient[{d}]", f"gradient equals the float64 scatter-add within the {d} summation bound",
            _gradient_property(d), _needs_dtype(d)) for d in WEIGHT_DTYPES],
    Check("scalar_id", "a 0-d id gives one row and its gradient", _scalar_id),
    Check("empty_batch", "empty id arrays give empty outputs and a zero gradient", _empty_batch),
    Check("vocab_of_one", "a one-row table, with a 0-d and a 2-d id array", _vocab_of_one),
    Check("index_dtypes", "claimed index dtypes work, others are rejected with an error", _index_dtypes),
    Check("negative_index", "what id -1 does matches the declaration",
          _observe("negative_index", [-1, -2], wrap_rows=[4, 3], clamp_rows=[0, 0])),
    Check("out_of_range", "what id >= vocab does matches the declaration",
          _observe("out_of_range", [5, 6], wrap_rows=[0, 1], clamp_rows=[4, 4])),
    Check("duplicates_accumulate", "duplicate ids add up exactly; untouched rows are zero", _duplicates_accumulate),
    Check("gradient_representation", "sparse/dense gradient as declared; densified equals scatter-add",
          _gradient_representation),
    Check("onehot_agrees_with_gather", "one_hot(idx) @ W equals the framework's own gather",
          _agrees_with_gather, _onehot_only),
    Check("nan_inf_isolated", "NaN/Inf rows that are not looked up do not leak into the output", _nan_inf_isolated),
    Check("negative_zero_preserved", "a -0.0 row comes back as -0.0", _negative_zero),
    *[Check(f"subnormals_preserved[{d}]", f"subnormal {d} rows come back unchanged", _subnormals(d), _needs_dtype(d))
      for d in WEIGHT_DTYPES],
    Check("deterministic", "two identical calls give bitwise-equal results (CPU)", _deterministic,
          lambda a: None if a.device == "cpu" else "bitwise determinism is required on CPU only: GPU "
          "scatter-adds use atomics unless a framework's deterministic mode is on"),
    Check("low_precision_accumulation[float16]", "3000 duplicate unit gradients sum to 3000 in float16",
          _low_precision_accumulation("float16", 3000), _needs_dtype("float16")),
    Check("low_precision_accumulation[bfloat16]", "1000 duplicate unit gradients sum to 1000 in bfloat16",
          _low_precision_accumulation("bfloat16", 1000), _needs_dtype("bfloat16")),
]
CHECKS_BY_NAME = {c.name: c for c in CHECKS}


def skip_reason(adapter: EmbeddingAdapter, check: Check) -> str | None:
    if check.name in adapter.declared.not_applicable:
        return adapter.declared.not_applicable[check.name]
    return check.applies(adapter)


def _describe_failure(exc: BaseException) -> str:
    """The assertion message (with Hypothesis' falsifying example); for a crash, the tail of
    its traceback too, which names the adapter line that broke."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, AssertionError):
        return text
    frames = "".join(traceback.format_tb(exc.__traceback__)[-3:]).rstrip()
    return f"{text}\n{frames}"


def run_check(adapter: EmbeddingAdapter, check: Check | str) -> CheckResult:
    """Run one check and classify it; never raises for adapter misbehaviour."""
    check = CHECKS_BY_NAME[check] if isinstance(check, str) else check
    reason = skip_reason(adapter, check)
    if reason:
        return CheckResult(check.name, "skipped", reason)
    ctx = Context()
    deviation = adapter.declared.deviations.get(check.name)
    started = time.perf_counter()
    try:
        check.run(adapter, ctx)
    except Exception as exc:  # an adapter crash is a failure of that adapter, not of the run
        elapsed = time.perf_counter() - started
        detail = _describe_failure(exc)
        if deviation:
            return CheckResult(check.name, "xfailed", f"declared deviation: {deviation}\nobserved: {detail}",
                               ctx.examples, elapsed, ctx.observed)
        return CheckResult(check.name, "failed", detail, ctx.examples, elapsed, ctx.observed)
    elapsed = time.perf_counter() - started
    if deviation:
        return CheckResult(check.name, "failed", f"declared deviation did not occur: {deviation}",
                           ctx.examples, elapsed, ctx.observed)
    return CheckResult(check.name, "passed", "", ctx.examples, elapsed, ctx.observed)


def check_adapter(adapter: EmbeddingAdapter, checks: list[str] | None = None) -> list[CheckResult]:
    """Every check (or the named ones) on one adapter: the notebook/script front door."""
    selected = [CHECKS_BY_NAME[c] for c in checks] if checks else CHECKS
    return [run_check(adapter, c) for c in selected]
