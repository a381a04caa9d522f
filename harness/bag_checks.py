"""Checks of bag (segment reduction) adapters against ``harness.bags``' oracle.

A bag adapter (``Declared.bags`` set) takes ``harness.bags.Bags`` where a lookup adapter takes
an id array, and returns one row per bag. Its checks:

- ``bag_sum``, ``bag_mean``, ``bag_max``: forward and gradient over ragged bags (empty bags,
  one huge bag, duplicate ids inside a bag) for each mode it declares;
- ``bag_per_sample_weights``: sum mode with a weight per id;
- ``bag_empty``: what an empty bag returns in each mode, observed and compared with the
  declaration (frameworks differ here);
- ``bag_input_forms``: the same bags as a 2-D id matrix or with the last offset appended;
- ``bag_padding_idx``: ids equal to padding_idx are left out of their bag (torch);
- ``bag_agrees_with_gather_bag``: the multi-hot twin M @ W equals the framework's own bag.

Sums are bounded like the lookup gradient (harness/tolerance.py): k terms in float32 err by
at most gamma_(k-1) * sum|terms|, plus a rounding per term for a weight or a mean's division
and one for the result; a max is exact.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np

from harness import bags as bag_oracle
from harness.bags import Bags, bag_cases
from harness.checks import Check, Context, _accumulation_format, _call, _fail, _property
from harness.dtypes import unit_roundoff
from harness.tolerance import gamma

EMPTY_OUTCOMES = ("zeros", "nan", "-inf", "+inf")


def _declared(adapter):
    return adapter.declared.bags


def _needs_mode(mode: str, adapter) -> str | None:
    modes = _declared(adapter).modes
    return None if mode in modes else f"{adapter.id} has no {mode} bags (its modes: {', '.join(modes)})"


def _needs_weights(adapter) -> str | None:
    return None if _declared(adapter).per_sample_weights else f"{adapter.id} takes no per-sample weights"


def _needs_forms(adapter) -> str | None:
    return None if _declared(adapter).input_forms else f"{adapter.id} takes bags as offsets only"


def _needs_padding(adapter) -> str | None:
    return None if "padding_idx" in adapter.declared.options else f"{adapter.id} has no padding_idx option"


def _multihot_only(adapter) -> str | None:
    if adapter.variant != "onehot" or not adapter.gather_twin:
        return "compares a multi-hot adapter with its gather twin; this adapter is the gather side"
    return None


def _empty_outcome(row: np.ndarray) -> str:
    row = np.asarray(row, dtype=np.float64)
    for name, hit in (("zeros", row == 0), ("nan", np.isnan(row)), ("-inf", row == -np.inf), ("+inf", row == np.inf)):
        if row.size and hit.all():
            return name
    return "other: " + str(row.tolist())[:80]


# --- calling and expecting ------------------------------------------------------------------
def _shown(bags: Bags, options: str = "") -> tuple[dict, str]:
    psw = "psw" if bags.per_sample_weights is not None else "None"
    configured = f".configured({options})" if options else ""
    shown = {**(bags.recipes or {}), "bags": f"Bags(ids, offsets, {bags.mode!r}, {psw}, form={bags.form!r})"}
    return shown, f"adapter{configured}"


def _run(adapter, weights, bags: Bags, up, *, options: dict | None = None, gradient: bool = True):
    """Forward (and gradient) of the adapter, or of it configured with ``options``."""
    text = ", ".join(f"{k}={v!r}" for k, v in (options or {}).items())
    shown, who = _shown(bags, text)
    target = adapter.configured(**options) if options else adapter
    inputs = {"W": weights, "ids": bags.ids, "offsets": bags.offsets, "up": up}
    if bags.per_sample_weights is not None:
        inputs["psw"] = bags.per_sample_weights
    out = _call(adapter, f"{who}.lookup(W, bags)", lambda: target.lookup(weights, bags), inputs, shown)
    grad = None
    if gradient and adapter.declared.gradient != "none":
        grad = _call(adapter, f"{who}.weight_grad(W, bags, up)", lambda: target.weight_grad(weights, bags, up),
                     inputs, shown)
    return out, grad, shown, who


def _unit(adapter) -> float:
    return unit_roundoff(_accumulation_format(adapter.declared.matmul_precision, "float32"))


def _expect_bag_rows(adapter, got, weights, bags: Bags, shown: dict, who: str) -> None:
    call, expected = f"{who}.lookup(W, bags)", "harness.bags.forward(W, bags)"
    want = bag_oracle.forward(weights, bags)
    got = np.asarray(got)
    if got.shape != want.shape:
        _fail(adapter, f"output shape {got.shape}, expected (bags, dim) = {want.shape}", call, expected=expected,
              **shown)
    if got.dtype != np.float32:
        _fail(adapter, f"output dtype {got.dtype}, expected the weight dtype float32", call, expected=expected, **shown)
    empty = bags.lengths == 0
    declared = _declared(adapter).empty(bags.mode)
    for b in np.flatnonzero(empty):
        seen = _empty_outcome(got[b])
        if seen != declared:
            _fail(adapter, f"empty bag {b} ({bags.mode}) returned {seen}, declared {declared}", call,
                  expected=expected, **shown)
    filled = ~empty
    if bags.mode == "max":
        bad = ~(got[filled].astype(np.float64) == want[filled])
        rule = "exact"
    else:
        u = _unit(adapter)
        k = np.maximum(bags.lengths[filled] - 1, 0)[:, None]
        scale = bag_oracle.abs_forward(weights, bags)[filled]
        tol = u * np.abs(want[filled]) + (gamma(k, u) + 2 * u) * scale
        bad = ~(np.abs(got[filled].astype(np.float64) - want[filled]) <= tol)
        rule = "gamma_(k-1) bound"
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        b = int(np.flatnonzero(filled)[r])
        _fail(adapter, f"bag {b} ({bags.mode}, {bags.lengths[b]} ids) differs from the oracle at col {c}: got "
              f"{got[b, c]!r}, expected {want[b, c]!r} ({rule})", call, expected=expected, **shown)


def _expect_bag_gradient(adapter, got, weights, bags: Bags, up, shown: dict, who: str,
                         padding_idx: int | None = None) -> None:
    call, expected = f"{who}.weight_grad(W, bags, up)", "harness.bags.gradient(W, bags, up)"
    want = bag_oracle.gradient(weights, bags, up)
    got = np.asarray(got)
    if got.shape != want.shape or got.dtype != np.float32:
        _fail(adapter, f"gradient {got.dtype} {got.shape}, expected float32 {want.shape}", call, expected=expected,
              **shown)
    u = _unit(adapter)
    _, counts = bag_oracle.term_counts(bags, weights.shape[0])
    k = np.maximum(counts - 1, 0)[:, None]
    tol = u * np.abs(want) + (gamma(k, u) + 2 * u) * bag_oracle.abs_gradient(weights, bags, up)
    if padding_idx is not None:
        tol[padding_idx % weights.shape[0]] = 0.0
    bad = ~(np.abs(got.astype(np.float64) - want) <= tol)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        _fail(adapter, f"gradient row {r} col {c}: got {got[r, c]!r}, expected {want[r, c]!r} ({counts[r]} ids "
              f"of that row, tolerance {tol[r, c]:.3g})", call, expected=expected, **shown)


def _check_case(adapter, weights, bags, up, options=None, padding_idx=None, expect_bags=None):
    out, grad, shown, who = _run(adapter, weights, bags, up, options=options)
    expect_bags = expect_bags or bags
    _expect_bag_rows(adapter, out, weights, expect_bags, shown, who)
    if grad is not None:
        _expect_bag_gradient(adapter, grad, weights, expect_bags, up, shown, who, padding_idx)


# --- checks ---------------------------------------------------------------------------------
def _mode_property(mode: str, adapter, ctx: Context, weighted: bool = False):
    def bag_matches_oracle(case):
        ctx.examples += 1
        weights, bags, up = case
        _check_case(adapter, weights, bags, up)

    _property(adapter, lambda escalate: bag_cases(mode, weighted=weighted), bag_matches_oracle, [], [])


def _small_bags(mode: str, rng_seed: int = 5, *, lengths=(0, 3, 1, 0, 4, 4)) -> tuple[np.ndarray, Bags, np.ndarray]:
    """A fixed ragged batch: empty bags first, in the middle and last, duplicates inside a bag."""
    rng = np.random.default_rng(rng_seed)
    weights = rng.standard_normal((6, 3)).astype(np.float32)
    total = int(sum(lengths))
    ids = np.array([2, 2, 5, 0, 1, 3, 2, 4, 4, 4, 0, 1][:total], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    up = rng.standard_normal((len(lengths), 3)).astype(np.float32)
    recipes = {"rng": f"np.random.default_rng({rng_seed})", "W": "rng.standard_normal((6, 3)).astype(np.float32)",
               "ids": f"np.array({ids.tolist()})", "offsets": f"np.array({offsets.tolist()})",
               "up": f"rng.standard_normal(({len(lengths)}, 3)).astype(np.float32)"}
    return weights, Bags(ids, offsets, mode, recipes=recipes), up


def _empty_bags(adapter, ctx: Context):
    """Each declared mode on bags with empty ones first, in the middle and last: what they return."""
    observed = {}
    for mode in _declared(adapter).modes:
        weights, bags, up = _small_bags(mode, lengths=(0, 2, 0))
        out, _, shown, who = _run(adapter, weights, bags, up, gradient=False)
        rows = np.asarray(out).shape[0] if np.asarray(out).ndim else 0
        observed[mode] = _empty_outcome(np.asarray(out)[0]) if rows == bags.n_bags else \
            f"no row ({rows} rows for {bags.n_bags} bags)"
    ctx.observed["empty_bag"] = observed
    wrong = {m: o for m, o in observed.items() if o != _declared(adapter).empty(m)}
    if wrong:
        mode = next(iter(wrong))
        weights, bags, up = _small_bags(mode, lengths=(0, 2, 0))
        shown, who = _shown(bags)
        _fail(adapter, "empty bags: " + "; ".join(f"{m}: observed {o}, declared {_declared(adapter).empty(m)}"
                                                  for m, o in wrong.items()), f"{who}.lookup(W, bags)", **shown)


def _input_forms(adapter, ctx: Context):
    """The same bags as a (bags, length) id matrix, and with include_last_offset's extra offset."""
    for form in _declared(adapter).input_forms:
        for mode in _declared(adapter).modes:
            lengths = (4, 4, 4) if form == "matrix" else (0, 3, 1, 0, 4, 4)
            weights, bags, up = _small_bags(mode, lengths=lengths)
            ctx.examples += 1
            _check_case(adapter, weights, replace(bags, form=form), up)


def _padding_idx(adapter, ctx: Context):
    """Ids equal to padding_idx are not part of their bag: sums skip them, a mean divides by the
    ids that remain, a bag of padding only is an empty bag; the padding row gets no gradient."""
    for mode in _declared(adapter).modes:
        weights, bags, up = _small_bags(mode)
        for padding in (2, 4 - weights.shape[0]):  # also as a negative index
            ctx.examples += 1
            keep = bags.ids != padding % weights.shape[0]
            kept_lengths = np.add.reduceat(keep.astype(np.int64), bags.offsets) if len(bags.ids) else bags.lengths
            kept_lengths = np.where(bags.lengths == 0, 0, kept_lengths)  # reduceat repeats a value for empty bags
            offsets = np.concatenate([[0], np.cumsum(kept_lengths)[:-1]]).astype(np.int64)
            without = Bags(bags.ids[keep], offsets, mode)
            _check_case(adapter, weights, bags, up, options={"padding_idx": padding}, padding_idx=padding,
                        expect_bags=without)


def _agrees_with_gather_bag(adapter, ctx: Context):
    """The seed's equivalence for bags: multi-hot(bags) @ W equals the framework's own bag,
    forward and gradient, within both summation bounds."""
    from harness.checks import _twin

    twin = _twin(adapter)

    def multihot_agrees(case):
        ctx.examples += 1
        weights, bags, up = case
        mine, g_mine, shown, _ = _run(adapter, weights, bags, up)
        theirs, g_theirs, _, _ = _run(twin, weights, bags, up)
        both = [(np.asarray(mine, np.float64), np.asarray(theirs, np.float64), "forward")]
        if g_mine is not None and g_theirs is not None:
            both.append((np.asarray(g_mine, np.float64), np.asarray(g_theirs, np.float64), "gradient"))
        u = _unit(adapter)
        for a, b, what in both:
            if a.shape != b.shape:
                _fail(adapter, f"multi-hot {what} shape {a.shape}, its gather twin {twin.id} gives {b.shape}",
                      f"adapter.lookup(W, bags), load_adapter({twin.id!r}).lookup(W, bags)", **shown)
            k = max(int(bags.lengths.max(initial=0)), 1)
            tol = 2 * (gamma(k, u) + 2 * u) * (np.nan_to_num(np.abs(a)) + np.nan_to_num(np.abs(b)))
            if not np.all((np.abs(a - b) <= tol) | (a == b) | (np.isnan(a) & np.isnan(b))):
                _fail(adapter, f"multi-hot {what} differs from its gather twin {twin.id}",
                      f"adapter.lookup(W, bags), load_adapter({twin.id!r}).lookup(W, bags)", **shown)

    _property(adapter, lambda escalate: bag_cases("sum"), multihot_agrees, [], [])


BAG_CHECKS: list[Check] = [
    *[Check(f"bag_{mode}", f"{mode} bags: forward and gradient against the oracle over ragged bags (empty, huge, "
            "duplicate ids)", partial(_mode_property, mode), partial(_needs_mode, mode), family="bag")
      for mode in bag_oracle.MODES],
    Check("bag_per_sample_weights", "sum bags with a weight per id: forward and gradient against the oracle",
          partial(_mode_property, "sum", weighted=True), _needs_weights, family="bag"),
    Check("bag_empty", "what an empty bag returns in each mode matches the declaration", _empty_bags, family="bag"),
    Check("bag_input_forms", "the same bags as a 2-D id matrix or with the last offset appended", _input_forms,
          _needs_forms, family="bag"),
    Check("bag_padding_idx", "ids equal to padding_idx are left out of their bag and get no gradient", _padding_idx,
          _needs_padding, family="bag"),
    Check("bag_agrees_with_gather_bag", "multi-hot(bags) @ W equals the framework's own bag, forward and gradient",
          _agrees_with_gather_bag, _multihot_only, family="bag"),
]
