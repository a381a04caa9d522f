"""Hypothesis strategies for lookup cases: the space a user's bug lives in.

Tables from 2 rows to vocabularies past 2**15 and 2**16 (narrow or sign-confused index types
show there), square tables, widths past a SIMD register, ids of rank 0-3 in C, Fortran,
transposed and strided layouts, weights in Fortran layout, batches past any blocking size,
upstream gradients over the dtype's range, and negative ids where the adapter declares that
it wraps them. Large arrays come from a drawn seed (Hypothesis still shrinks the seed, the
sizes and the layouts); small ones element by element, so a failure shrinks to a few ids.

Tables hold finite *normal* values and +0.0 only: NaN/Inf, -0.0 and subnormals have their
own deterministic checks, because there one-hot @ W is expected to differ from the gather.
A one-row table is the deterministic check ``vocab_of_one`` (Flax special-cases it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from harness import layouts
from harness.dtypes import largest_finite, np_dtype, smallest_normal, unit_roundoff
from harness.tolerance import max_hits

# Float widths Hypothesis can draw exactly; bfloat16 is drawn as float32, then rounded.
_WIDTH = {"float16": 16, "bfloat16": 32, "float32": 32, "float64": 64}
BOUNDARY_VOCABS = (2**15 - 1, 2**15, 2**15 + 1, 2**16 - 1, 2**16, 2**16 + 3)
WIDE_DIMS = (7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65)  # around 128-, 256- and 512-bit registers
LARGE_BATCHES = (255, 256, 257, 1023, 1025, 4097)
SEED_CHOICES = 4
ELEMENTWISE_LIMIT = 2048  # arrays up to this many elements are drawn element by element
# One-hot adapters build an (ids x vocab) matrix: keep it within this many cells.
ONEHOT_CELLS = 2**22


@dataclass
class Case:
    weights: np.ndarray
    ids: np.ndarray
    upstream: np.ndarray | None = None
    # For arrays made from a seed, the expression that makes them again: the repro snippet
    # uses it instead of a literal with a million numbers.
    recipes: dict | None = None

    @property
    def vocab(self) -> int:
        return self.weights.shape[0]

    def for_snippet(self, **names: str) -> dict:
        """{snippet name: array or recipe} for the fields named, e.g. W="weights"."""
        recipes = self.recipes or {}
        return {name: recipes.get(field, getattr(self, field)) for name, field in names.items()}


def _values(dtype: str, magnitude: tuple[float, float]):
    width = _WIDTH[dtype]
    # Bounds must be exactly representable at the drawing width.
    lo, hi = (float(np.asarray(m).astype(f"float{width}")) for m in magnitude)
    return st.one_of(st.just(0.0), st.floats(lo, hi, width=width), st.floats(-hi, -lo, width=width))


def table_range(dtype: str) -> tuple[float, float]:
    """Normal magnitudes spanning most of the dtype's range (products with 0 stay exact)."""
    return smallest_normal(dtype) * 4, min(largest_finite(dtype) / 4, 1e30)


def upstream_range(dtype: str, max_hits: int) -> tuple[float, float]:
    """Magnitudes over the dtype's range such that ``max_hits`` of them cannot overflow, and
    a difference of two of them is 0 or normal (flush-to-zero cannot change a sum)."""
    lo = smallest_normal(dtype) / unit_roundoff(dtype)
    hi = min(largest_finite(dtype) / (4 * max(max_hits, 1)), 1e30)
    return lo, max(hi, lo)


def table_values(dtype: str):
    return _values(dtype, table_range(dtype))


def seeded_values(seed: int, shape: tuple, dtype: str, lo: float, hi: float, layout: str = "C") -> np.ndarray:
    """Log-uniform magnitudes in [lo, hi], random signs, some exact zeros; the same for the
    same arguments on any machine (NumPy's PCG64 streams are stable)."""
    rng = np.random.default_rng(seed)
    mags = np.exp(rng.uniform(np.log(lo), np.log(hi), size=shape))
    values = np.where(rng.random(shape) < 0.05, 0.0, mags * rng.choice([-1.0, 1.0], size=shape))
    return layouts.arrange(np.clip(values, -hi, hi).astype(np_dtype(dtype)), layout)


def seeded_ids(seed: int, shape: tuple, vocab: int, index_dtype: str, layout: str = "C",
               negative: bool = False) -> np.ndarray:
    """Random ids in [0, vocab) with every boundary id of the table among them (shuffled);
    with ``negative`` about half are written as id - vocab (the same row, wrapped)."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(rng.integers(0, vocab, size=shape))
    edges = boundary_ids(vocab)[: ids.size]
    ids.reshape(-1)[: len(edges)] = edges
    rng.shuffle(ids.reshape(-1))
    if negative:
        ids = np.where(rng.random(shape) < 0.5, ids - vocab, ids)
    return layouts.arrange(ids.astype(index_dtype), layout)


def _seeds():
    """A 32-bit seed drawn as four bytes, not one integer. Hypothesis shrinks towards fewer
    choices first; a one-choice seed would make a seeded million-element array "simpler" than
    a small case drawn element by element, and failures would be reported on the big one."""
    return st.lists(st.integers(0, 255), min_size=SEED_CHOICES, max_size=SEED_CHOICES).map(
        lambda octets: int.from_bytes(bytes(octets), "little"))


def _recipe(function: str, *args, **kwargs) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{function}({', '.join(parts)})"


def _array(draw, dtype: str, shape, magnitude: tuple[float, float], layout: str = "C") -> tuple[np.ndarray, str | None]:
    """(array, recipe or None): element by element when small, from a drawn seed when large."""
    if int(np.prod(shape, dtype=np.int64)) > ELEMENTWISE_LIMIT:
        seed = draw(_seeds())
        args = (seed, tuple(shape), dtype, float(magnitude[0]), float(magnitude[1]), layout)
        return seeded_values(*args), _recipe("seeded_values", *args)
    raw = draw(arrays(np.float16 if dtype == "float16" else np.float64 if dtype == "float64" else np.float32,
                      shape, elements=_values(dtype, magnitude)))
    return layouts.arrange(raw.astype(np_dtype(dtype)), layout), None


def boundary_ids(vocab: int) -> list[int]:
    """Ids where narrow or sign-confused index types go wrong, that exist in this table."""
    return sorted({i for i in (0, 1, 2**7 - 1, 2**7, 2**8 - 1, 2**8, 2**15 - 1, 2**15, 2**16 - 1, 2**16,
                               vocab - 1) if 0 <= i < vocab})


def _index_limit(index_dtypes) -> int:
    return min(int(np.iinfo(np.dtype(d)).max) for d in index_dtypes)


def _draw_small_ids(draw, vocab: int, index_dtype: str, *, max_rank: int, max_side: int, max_ids: int,
                    negative: bool):
    """Ids drawn one by one: rank 0-3, any layout, wrapping negatives where declared."""
    rank = draw(st.integers(0, max_rank))
    side = max(0, min(max_side, int(max_ids ** (1 / rank)) if rank else max_side))
    shape = tuple(draw(st.lists(st.integers(0, side), min_size=rank, max_size=rank)))
    ids = draw(arrays(np.int64, shape, elements=st.integers(0, vocab - 1)))
    if negative and ids.size:
        ids = np.where(draw(arrays(np.bool_, ids.shape)), ids - vocab, ids)
    layout = draw(st.sampled_from(layouts.LAYOUTS)) if ids.ndim else "C"
    return ids, layout


# The draw functions are plain functions wrapped here, not decorated: mutmut does not mutate
# decorated functions, and these decide what every property check sees.
_small_ids = st.composite(_draw_small_ids)


def _most_hits(ids: np.ndarray, vocab: int) -> int:
    """How often the most frequent row is hit (1 for an empty batch)."""
    return int(np.bincount(wrapped(ids, vocab).reshape(-1)).max()) if ids.size else 1


def wrapped(ids: np.ndarray, vocab: int) -> np.ndarray:
    """Negative ids as the rows they wrap to (what the oracle indexes)."""
    ids = np.asarray(ids).astype(np.int64)
    return np.where(ids < 0, ids + vocab, ids)


def _draw_lookup_case(draw, dtype: str, index_dtypes, *, max_vocab: int = 24, with_upstream: bool = False,
                      onehot: bool = False, negative: bool = False, max_side: int = 5, escalate: bool = True):
    """A table and ids (in range, or wrapping where declared); ``with_upstream`` adds an
    upstream gradient for the output. ``onehot`` bounds ids x vocab.

    The order of the draws serves shrinking: a small case is drawn first, then the
    escalations (a larger or boundary vocabulary, a wide or square table, a long batch), each
    of which shrinks to "none" without disturbing the small case, so a failure that needs
    no escalation is reported on a few ids."""
    index_dtype = draw(st.sampled_from(index_dtypes))
    limit = _index_limit([index_dtype]) + 1
    negative = negative and np.dtype(index_dtype).kind == "i"
    vocab = min(draw(st.integers(2, max_vocab)), limit)
    dim = draw(st.integers(1, 5))
    small_vocab = vocab
    max_ids = max(1, ONEHOT_CELLS // max(BOUNDARY_VOCABS)) if onehot else 1 << 30
    ids, layout = draw(_small_ids(small_vocab, index_dtype, max_rank=3, max_side=max_side, max_ids=max_ids,
                                  negative=negative))
    # Escalations (each shrinks to 0: none).
    grow = draw(st.integers(0, 2)) if escalate else 0
    if grow:
        vocab = min(draw(st.integers(max_vocab + 1, 300)) if grow == 1 else draw(st.sampled_from(BOUNDARY_VOCABS)),
                    limit)
        edges = np.array(boundary_ids(vocab))  # the small ids, moved onto this table's boundary rows
        rows = edges[wrapped(ids, small_vocab) % len(edges)]
        ids = np.where(ids < 0, rows - vocab, rows) if negative else rows
    if escalate and draw(st.integers(0, 1)):
        dim = draw(st.sampled_from(WIDE_DIMS))
    if escalate and vocab <= 128 and draw(st.integers(0, 4)) == 4:
        dim = vocab  # square tables: V and D confused goes unnoticed anywhere else
    recipes = {}
    # One-hot: ids x vocab within budget. Gradients: few enough duplicates per row for the
    # summation bound (random ids: about n / vocab per row; half the limit leaves room).
    big = [n for n in LARGE_BATCHES if (not onehot or n * vocab <= ONEHOT_CELLS)
           and (not with_upstream or n <= max_hits(dtype) * vocab // 2)]
    if escalate and big and draw(st.integers(0, 3)) == 3:  # a batch past any blocking size
        n = draw(st.sampled_from(big))
        args = (draw(_seeds()), draw(st.sampled_from([(n,), (n // 4, 4)])), vocab, index_dtype,
                draw(st.sampled_from(layouts.LAYOUTS)), negative)
        ids, recipes["ids"] = seeded_ids(*args), _recipe("seeded_ids", *args)
    else:
        ids = layouts.arrange(np.asarray(ids).astype(index_dtype), layout)
    weights, recipes["weights"] = _array(draw, dtype, (vocab, dim), table_range(dtype),
                                         "F" if escalate and draw(st.booleans()) else "C")
    upstream = None
    if with_upstream:
        upstream, recipes["upstream"] = _array(draw, dtype, ids.shape + (dim,),
                                               upstream_range(dtype, _most_hits(ids, vocab)))
    return Case(weights, ids, upstream, {k: v for k, v in recipes.items() if v})


lookup_cases = st.composite(_draw_lookup_case)


def minimal_cases(dtype: str, index_dtype: str, *, with_upstream: bool, negative: bool = False) -> list[Case]:
    """A few hand-picked smallest cases the checks try before anything is generated, so the
    commonest bugs (duplicates, a 0-d id, rank 2, a wrapped id) are reported at their smallest."""
    specs = [([[1.0], [2.0]], [0, 0]), ([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[2, 0], [1, 2]]),
             ([[1.0, -2.0], [3.0, 4.0]], 1)]
    if negative and np.dtype(index_dtype).kind == "i":
        specs.append(([[1.0], [2.0], [3.0]], [-1, 0, -1]))
    cases = []
    for table, ids in specs:
        weights = np.array(table).astype(np_dtype(dtype))
        ids = np.array(ids, dtype=index_dtype)
        upstream = np.ones(ids.shape + weights.shape[1:]).astype(np_dtype(dtype)) if with_upstream else None
        cases.append(Case(weights, ids, upstream))
    return cases


def boundary_cases(dtype: str, index_dtype: str, *, with_upstream: bool, onehot: bool) -> list[Case]:
    """Explicit examples every profile runs (``@example``): the boundaries where bugs live."""
    limit = int(np.iinfo(np.dtype(index_dtype)).max) + 1
    cases = []
    for seed, (vocab, dim, shape, layout, w_layout) in enumerate([
        (2**16 + 3, 17, (1025,), "C", "F"),      # past 2**15 and 2**16, a SIMD tail, a long batch
        (9, 9, (4, 6), "F", "C"),                # square table, Fortran ids
        (40, 33, (3, 5, 7), "transposed", "C"),  # rank 3, permuted axes
        (300, 16, (257,), "strided", "F"),       # strided ids across a block boundary
        (5, 3, (), "C", "C"),                    # a 0-d id
    ]):
        vocab = min(vocab, limit)
        if onehot and int(np.prod(shape)) * vocab > ONEHOT_CELLS:
            shape = (max(1, ONEHOT_CELLS // vocab),)
        w_args = (seed, (vocab, dim), dtype, *table_range(dtype), w_layout)
        i_args = (seed, shape, vocab, index_dtype, layout)
        recipes = {"weights": _recipe("seeded_values", *w_args), "ids": _recipe("seeded_ids", *i_args)}
        case = Case(seeded_values(*w_args), seeded_ids(*i_args), None, recipes)
        if with_upstream:
            u_args = (seed + 100, shape + (dim,), dtype, *upstream_range(dtype, _most_hits(case.ids, vocab)))
            case.upstream, recipes["upstream"] = seeded_values(*u_args), _recipe("seeded_values", *u_args)
        cases.append(case)
    return cases
