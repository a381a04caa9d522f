"""Bags (segment reductions): the op recommender and ranking models run, and its oracle.

A batch of bags is a flat id array cut into consecutive bags by ``offsets`` (the start of each
bag, as torch's ``nn.EmbeddingBag`` takes them); bag b is ``ids[offsets[b]:offsets[b + 1]]``.
Each bag reduces its rows to one output row:

    sum:  out[b] = sum_p  w_p * W[ids[p]]          (w_p: per-sample weights, 1 without them)
    mean: out[b] = sum_p  W[ids[p]] / len(bag b)
    max:  out[b] = max_p  W[ids[p]]               (per column)

The gradient sends ``up[b]`` back along the same paths: ``w_p * up[b]`` (sum), ``up[b] / len``
(mean), and for max, per column, to the row that held the maximum. An empty bag's output is
what each framework returns (observed, then declared): the oracle leaves it to the check.
The multi-hot twin computes ``M @ W`` with ``M[b, i]`` = the summed weights of id i in bag b,
the seed's equivalence for bags.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

MODES = ("sum", "mean", "max")


@dataclass(frozen=True)
class Bags:
    """Ragged bags of ids: flat ``ids``, each bag's start in ``offsets``, and how it reduces."""

    ids: np.ndarray
    offsets: np.ndarray
    mode: str = "sum"
    per_sample_weights: np.ndarray | None = None
    # How the adapter is handed the bags: "offsets", "matrix" (2-D ids, one bag per row) or
    # "last_offset" (offsets with the end of the last bag appended).
    form: str = "offsets"
    # Recipes for the repro snippet (large generated arrays), like strategies.Case's.
    recipes: dict | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"bag mode {self.mode!r}: use one of {MODES}")
        if self.ids.ndim != 1 or self.offsets.ndim != 1:
            raise ValueError("bags take a flat id array and a flat offsets array")
        ends = np.append(self.offsets[1:], len(self.ids))
        if len(self.offsets) and (self.offsets[0] != 0 or np.any(ends < self.offsets)):
            raise ValueError("offsets must start at 0 and never decrease")

    @property
    def n_bags(self) -> int:
        return len(self.offsets)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(np.append(self.offsets, len(self.ids))).astype(np.int64)

    @property
    def segment_ids(self) -> np.ndarray:
        """The bag of every position (what segment reductions take instead of offsets)."""
        return np.repeat(np.arange(self.n_bags), self.lengths)

    def weights_or_ones(self) -> np.ndarray:
        if self.per_sample_weights is None:
            return np.ones(len(self.ids), dtype=np.float64)
        return np.asarray(self.per_sample_weights, dtype=np.float64)

    def with_mode(self, mode: str) -> Bags:
        return Bags(self.ids, self.offsets, mode, self.per_sample_weights, self.form, self.recipes)

    def as_matrix(self) -> np.ndarray | None:
        """The same bags as a 2-D (bags, length) id array when every bag has one length."""
        lengths = self.lengths
        if not len(lengths) or np.any(lengths != lengths[0]) or lengths[0] == 0:
            return None
        return self.ids.reshape(self.n_bags, int(lengths[0]))


def _rows(weights: np.ndarray, bags: Bags) -> np.ndarray:
    return np.asarray(weights, dtype=np.float64)[bags.ids.astype(np.int64)]


def forward(weights: np.ndarray, bags: Bags) -> np.ndarray:
    """The reduced rows in float64, shape (bags, dim); an empty bag's row is NaN (undecided
    here: its value is the empty-bag behaviour the check compares with the declaration)."""
    rows = _rows(weights, bags) * bags.weights_or_ones()[:, None]
    out = np.full((bags.n_bags, weights.shape[1]), np.nan)
    seg = bags.segment_ids
    filled = bags.lengths > 0
    if bags.mode == "max":
        out[filled] = -np.inf
        np.maximum.at(out, seg, rows)
        return out
    out[filled] = 0.0
    np.add.at(out, seg, rows)
    if bags.mode == "mean":
        out[filled] /= bags.lengths[filled, None]
    return out


def gradient(weights: np.ndarray, bags: Bags, upstream: np.ndarray) -> np.ndarray:
    """d(sum(forward * upstream))/dW in float64, shape of ``weights``. Max: per column, the
    bag's upstream goes to the first position holding the maximum (positions that hold the same
    row give the same answer; the strategies keep distinct rows from tying)."""
    vocab, dim = weights.shape
    up = np.asarray(upstream, dtype=np.float64)
    grad = np.zeros((vocab, dim))
    ids = bags.ids.astype(np.int64)
    seg = bags.segment_ids
    if bags.mode == "max":
        rows = _rows(weights, bags)
        for b, start in enumerate(bags.offsets):
            length = bags.lengths[b]
            if length:
                first = int(start) + np.argmax(rows[start:start + length], axis=0)  # first max, per column
                np.add.at(grad, (ids[first], np.arange(dim)), up[b])
        return grad
    scale = bags.weights_or_ones()
    if bags.mode == "mean":
        scale = scale / np.maximum(bags.lengths, 1)[seg]
    np.add.at(grad, ids, up[seg] * scale[:, None])
    return grad


def term_counts(bags: Bags, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """(terms per output row, terms per gradient row): how many values each sum adds up, the
    k of the summation bound."""
    return bags.lengths, np.bincount(bags.ids.astype(np.int64), minlength=vocab)


def abs_forward(weights: np.ndarray, bags: Bags) -> np.ndarray:
    """Per element sum of |terms| of each output row (the scale of its summation bound)."""
    absolute = Bags(bags.ids, bags.offsets, bags.mode,
                    None if bags.per_sample_weights is None else np.abs(bags.per_sample_weights))
    return np.nan_to_num(np.abs(forward(np.abs(np.asarray(weights, dtype=np.float64)), absolute)))


def abs_gradient(weights: np.ndarray, bags: Bags, upstream: np.ndarray) -> np.ndarray:
    """Per element sum of |terms| of each gradient row."""
    absolute = Bags(bags.ids, bags.offsets, bags.mode,
                    None if bags.per_sample_weights is None else np.abs(bags.per_sample_weights))
    return np.abs(gradient(weights, absolute, np.abs(np.asarray(upstream, dtype=np.float64))))


# --- strategies ----------------------------------------------------------------------------
def _draw_bags(draw, mode: str, *, weighted: bool = False, max_vocab: int = 50) -> tuple[np.ndarray, Bags, np.ndarray]:
    """(table, bags, upstream): ragged bags drawn by Hypothesis (so failures shrink to few, short
    bags), with empty bags, one huge bag and duplicate ids inside a bag among them; the values
    come from seeds (standard normal: distinct rows never tie for a max). ``recipes`` rebuild
    every array in a repro snippet."""
    vocab = draw(st.integers(1, max_vocab))
    dim = draw(st.integers(1, 8))
    lengths = draw(st.lists(st.one_of(st.just(0), st.integers(1, 6), st.integers(200, 3000)), max_size=8))
    pool = draw(st.one_of(st.none(), st.lists(st.integers(0, vocab - 1), min_size=1, max_size=3)))
    seed = draw(st.integers(0, 2**16))
    total, n_bags = int(sum(lengths)), len(lengths)
    if pool is None:
        ids_recipe = f"np.random.default_rng({seed + 1}).integers(0, {vocab}, size={total})"
    else:  # a few ids over and over: duplicates inside every bag
        ids_recipe = f"np.array({pool})[np.random.default_rng({seed + 1}).integers(0, {len(pool)}, size={total})]"
    recipes = {"W": f"np.random.default_rng({seed}).standard_normal(({vocab}, {dim})).astype(np.float32)",
               "ids": ids_recipe,
               "offsets": f"np.array({[0, *np.cumsum(lengths)[:-1].tolist()][:n_bags]}, dtype=np.int64)",
               "up": f"np.random.default_rng({seed + 3}).standard_normal(({n_bags}, {dim})).astype(np.float32)"}
    if weighted:
        recipes["psw"] = f"np.random.default_rng({seed + 2}).standard_normal({total}).astype(np.float32)"
    # The arrays are made by evaluating the recipes themselves (strings written just above), so a
    # snippet's recipe can never drift from the array the check used.
    made = {name: eval(recipe, {"np": np}) for name, recipe in recipes.items()}
    bags = Bags(np.asarray(made["ids"], dtype=np.int64), made["offsets"], mode, made.get("psw"), recipes=recipes)
    return made["W"], bags, made["up"]


bag_cases = st.composite(_draw_bags)
