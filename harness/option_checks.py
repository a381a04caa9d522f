"""Checks of the layer options (``harness.adapter.LAYER_OPTIONS``), each against the oracle's
extension for it. An adapter that does not declare an option gets ``not applicable`` for its
check: the matrix shows that the framework has no such option, rather than leaving a gap.

- ``padding_idx`` (torch): the padding row is looked up as W[padding_idx], its gradient stays zero.
- ``max_norm`` (torch): forward renormalises the looked-up rows **in place**; the check states
  the table after the call and the rows returned.
- ``scale_grad_by_freq`` (torch): each row's gradient divided by its id's count in the batch.
- ``mask_zero`` (Keras): the mask is ``ids != 0``; the output and the gradient at masked
  positions are recorded (``observed``) and must be those of the plain lookup.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from hypothesis import strategies as st

from harness import oracle
from harness.checks import (
    Check,
    _call,
    _expect_gradient,
    _expect_rows,
    _fail,
    _needs_gradient,
    _preferred_ids_dtypes,
    _property,
    _same_bits,
)
from harness.dtypes import unit_roundoff
from harness.strategies import Case, lookup_cases, minimal_cases


def _needs_option(option: str, adapter) -> str | None:
    if option in adapter.declared.options:
        return None
    offered = ", ".join(adapter.declared.options) or "none"
    return f"{adapter.id} has no {option} option (its layer options: {offered})"


def _needs(option: str, adapter) -> str | None:
    return _needs_option(option, adapter) or _needs_gradient(adapter)


def _gradient_cases(adapter, body):
    """``body`` over float32 gradient cases: the smallest first, then generated ones."""
    index_dtypes = _preferred_ids_dtypes(adapter)
    _property(adapter, lambda escalate: lookup_cases("float32", index_dtypes, max_vocab=6, with_upstream=True,
                                                     escalate=escalate),
              body, [], minimal_cases("float32", index_dtypes[0], with_upstream=True))


def _configured_calls(adapter, case: Case, **options):
    """Forward and gradient of the adapter configured with ``options`` on one case, through
    ``_call`` (repro snippets that rebuild the configuration)."""
    configured = adapter.configured(**options)
    text = ", ".join(f"{name}={value!r}" for name, value in options.items())
    shown = case.for_snippet(W="weights", ids="ids", up="upstream")
    inputs = {"W": case.weights, "ids": case.ids, "up": case.upstream}
    forward_call = f"adapter.configured({text}).lookup(W, ids)"
    gradient_call = f"adapter.configured({text}).weight_grad(W, ids, up)"
    out = _call(adapter, forward_call, lambda: configured.lookup(case.weights, case.ids), inputs, shown)
    grad = _call(adapter, gradient_call, lambda: configured.weight_grad(case.weights, case.ids, case.upstream),
                 inputs, shown)
    return shown, out, grad, forward_call, gradient_call


def _padding_idx(adapter, ctx):
    def padding_row_gets_no_gradient(case: Case):
        ctx.examples += 1
        vocab = case.vocab
        row = int(case.ids.reshape(-1)[0]) if case.ids.size else vocab - 1
        padding = row - vocab if row % 2 else row  # torch also takes -V..-1, counted from the end
        shown, out, grad, fwd, bwd = _configured_calls(adapter, case, padding_idx=padding)
        _expect_rows(adapter, out, oracle.forward(case.weights, case.ids), shown, "float32", call=fwd)
        _expect_gradient(adapter, grad, case.weights, case.ids, case.upstream, shown, "float32", call=bwd,
                         oracle_call=f"oracle.gradient_with_padding(ids, up, len(W), {padding})",
                         padding_idx=padding)

    _gradient_cases(adapter, padding_row_gets_no_gradient)


def _scale_grad_by_freq(adapter, ctx):
    def gradient_divided_by_count(case: Case):
        ctx.examples += 1
        shown, out, grad, fwd, bwd = _configured_calls(adapter, case, scale_grad_by_freq=True)
        _expect_rows(adapter, out, oracle.forward(case.weights, case.ids), shown, "float32", call=fwd)
        _expect_gradient(adapter, grad, case.weights, case.ids, case.upstream, shown, "float32", call=bwd,
                         oracle_call="oracle.gradient_scaled_by_freq(ids, up, len(W))", scale_by_freq=True)

    _gradient_cases(adapter, gradient_divided_by_count)


def _draw_renorm_case(draw) -> tuple[Case, float, float]:
    """A float32 table of moderate values (norms cannot overflow), ids with duplicates, and a
    max_norm between the smallest and largest row norm, so some rows are scaled and some not."""
    vocab = draw(st.integers(1, 12))
    dim = draw(st.integers(1, 9))
    n = draw(st.integers(0, 16))
    seed = draw(st.integers(0, 2**16))
    norm_type = draw(st.sampled_from([2.0, 1.0, 3.0]))
    rng = np.random.default_rng(seed)
    weights = (rng.standard_normal((vocab, dim)) * rng.uniform(0.1, 4.0, size=(vocab, 1))).astype(np.float32)
    ids = rng.integers(0, vocab, size=n)
    norms = np.linalg.norm(weights.astype(np.float64), ord=norm_type, axis=1)
    max_norm = float(np.float32(draw(st.floats(0.5, 1.5)) * np.median(norms)))
    recipes = {"rng": f"np.random.default_rng({seed})",
               "W": f"(rng.standard_normal(({vocab}, {dim})) * rng.uniform(0.1, 4.0, size=({vocab}, 1)))"
                    f".astype(np.float32)",
               "ids": f"rng.integers(0, {vocab}, size={n})"}
    return Case(weights, ids.astype(np.int64), recipes=recipes), max_norm, norm_type


_renorm_cases = st.composite(_draw_renorm_case)


def _max_norm(adapter, ctx):
    index_dtype = _preferred_ids_dtypes(adapter)[0]

    def rows_renormalised_in_place(case):
        case, max_norm, norm_type = case  # (the table case, max_norm, norm_type)
        ctx.examples += 1
        ids = case.ids.astype(index_dtype)
        options = f"max_norm={max_norm!r}, norm_type={norm_type!r}"
        configured = adapter.configured(max_norm=max_norm, norm_type=norm_type)
        shown = {**case.recipes, "ids": f"{case.recipes['ids']}.astype({index_dtype!r})"}
        call = f"adapter.configured({options}).lookup_and_table(W, ids)"
        out, table = _call(adapter, call, lambda: configured.lookup_and_table(case.weights, ids),
                           {"W": case.weights, "ids": ids}, shown)
        want = oracle.renormalised(case.weights, ids, max_norm, norm_type)
        expected = f"oracle.renormalised(W, ids, {max_norm!r}, {norm_type!r})"
        # torch computes each norm and scale in float32: a few roundings per element of a row.
        dim = case.weights.shape[1]
        tol = (dim + 4) * unit_roundoff("float32") * np.abs(want).max(axis=1, keepdims=True)
        touched = np.zeros(case.vocab, bool)
        touched[ids.astype(np.int64).reshape(-1)] = True
        if np.asarray(table).shape != want.shape:
            _fail(adapter, f"table shape {np.asarray(table).shape} after the call, expected {want.shape}", call,
                  expected=expected, **shown)
        table = np.asarray(table, dtype=np.float64)
        if not _same_bits(table[~touched].astype(np.float32), case.weights[~touched]):
            _fail(adapter, "rows the ids do not look up changed in the table", call, expected=expected, **shown)
        bad = ~(np.abs(table - want) <= tol)
        if bad.any():
            r, c = (int(i) for i in np.argwhere(bad)[0])
            _fail(adapter, f"table after the call: row {r} col {c} is {table[r, c]!r}, expected {want[r, c]!r} "
                  f"(rows over max_norm={max_norm} in the {norm_type}-norm are scaled to it, in place)", call,
                  expected=expected, **shown)
        rows = np.asarray(out, dtype=np.float64)
        if rows.shape != ids.shape + (dim,) or not np.array_equal(rows, table[ids.astype(np.int64)]):
            _fail(adapter, "the rows returned are not the renormalised table's rows at ids", call,
                  expected=expected, **shown)

    _property(adapter, lambda escalate: _renorm_cases(), rows_renormalised_in_place, [], [])


def _mask_zero(adapter, ctx):
    def mask_and_masked_positions(case: Case):
        ctx.examples += 1
        shown, out, grad, fwd, bwd = _configured_calls(adapter, case, mask_zero=True)
        call = "adapter.configured(mask_zero=True).mask(W, ids)"
        mask = _call(adapter, call, lambda: adapter.configured(mask_zero=True).mask(case.weights, case.ids),
                     {"W": case.weights, "ids": case.ids}, shown)
        want = oracle.mask_zero(case.ids)
        if mask is None or np.asarray(mask).shape != want.shape or not np.array_equal(np.asarray(mask), want):
            _fail(adapter, f"mask {None if mask is None else np.asarray(mask).tolist()}, expected ids != 0", call,
                  expected="oracle.mask_zero(ids)", **shown)
        masked = ~want
        if masked.any():  # what the masked positions hold, for the matrix
            rows = out[masked]
            ctx.observed["mask_zero_output"] = ("W[0]" if _same_bits(rows, case.weights[[0] * len(rows)])
                                                else "zeros" if np.all(rows == 0) else "other")
            if np.any(case.upstream[masked] != 0):
                ctx.observed["mask_zero_gradient"] = "accumulated" if np.any(grad[0] != 0) else "zero"
        _expect_rows(adapter, out, oracle.forward(case.weights, case.ids), shown, "float32", call=fwd)
        _expect_gradient(adapter, grad, case.weights, case.ids, case.upstream, shown, "float32", call=bwd)

    _gradient_cases(adapter, mask_and_masked_positions)


OPTION_CHECKS: list[Check] = [
    Check("option_padding_idx", "padding_idx: that row is looked up as W[padding_idx] and gets no gradient "
          "(also given as a negative index)", _padding_idx, partial(_needs, "padding_idx")),
    Check("option_max_norm", "max_norm/norm_type: looked-up rows over max_norm are scaled to it in the table, in "
          "place; the output is the renormalised rows", _max_norm, partial(_needs_option, "max_norm")),
    Check("option_scale_grad_by_freq", "scale_grad_by_freq: each row's gradient is divided by its id's count",
          _scale_grad_by_freq, partial(_needs, "scale_grad_by_freq")),
    Check("option_mask_zero", "mask_zero: the mask is ids != 0; output and gradient at masked positions are the "
          "plain lookup's", _mask_zero, partial(_needs, "mask_zero")),
]
