"""The strategies, pinned: every range, threshold and decision written out by hand.

The draw functions are driven by a scripted ``draw`` that answers from a list and records the
strategy it was asked for (its repr names every bound), so each branch of a lookup case is
checked exactly; real Hypothesis draws then check the invariants every case keeps and that a
failure shrinks to a small case."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from harness import layouts
from harness.dtypes import largest_finite, np_dtype
from harness.strategies import (
    BOUNDARY_VOCABS,
    LARGE_BATCHES,
    ONEHOT_CELLS,
    WIDE_DIMS,
    Case,
    _array,
    _draw_lookup_case,
    _draw_small_ids,
    _index_limit,
    _most_hits,
    _recipe,
    _seeds,
    _values,
    boundary_cases,
    boundary_ids,
    lookup_cases,
    minimal_cases,
    seeded_ids,
    seeded_values,
    table_range,
    table_values,
    upstream_range,
    wrapped,
)

F16_MAX = 65504.0
LAYOUT_CHOICES = "sampled_from(('C', 'F', 'transposed', 'strided'))"
SEED_DRAW = ("lists(integers(min_value=0, max_value=255), min_size=4, max_size=4)"
             ".map(lambda octets: int.from_bytes(bytes(octets), 'little'))")
FAST = settings(database=None, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))


class Script:
    """A ``draw`` that answers from a list and records the repr of what it was asked."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, strategy):
        self.asked.append(repr(strategy))
        return self.answers.pop(0)


def _floats(lo: float, hi: float, width: int) -> str:
    """The repr of ``_values``: bounds rounded to the drawing width (64, the default, unnamed)."""
    lo, hi = (float(np.asarray(x).astype(f"float{width}")) for x in (lo, hi))
    named = "" if width == 64 else f", width={width}"
    return (f"one_of(just(0.0), floats(min_value={lo!r}, max_value={hi!r}{named}), "
            f"floats(min_value={-hi!r}, max_value={-lo!r}{named}))")


def _draws(strategy, n: int = 150) -> list:
    """``n`` generated examples (no shrinking), the same on every run."""
    seen = []

    @settings(FAST, max_examples=n, phases=[Phase.generate])
    @given(strategy)
    def collect(value):
        seen.append(value)

    collect()
    return seen


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(
        np.ascontiguousarray(a).view(np.uint8), np.ascontiguousarray(b).view(np.uint8))


# --- ranges, by hand from the IEEE formats ----------------------------------------------------
def test_table_ranges_span_normal_magnitudes_within_a_quarter_of_the_largest():
    assert table_range("float16") == (2.0**-12, F16_MAX / 4)
    assert table_range("bfloat16") == (2.0**-124, 1e30)
    assert table_range("float32") == (2.0**-124, 1e30)
    assert table_range("float64") == (2.0**-1020, 1e30)


@pytest.mark.parametrize(("dtype", "hits", "expected"), [
    ("float16", 3, (2.0**-3, F16_MAX / 12)),        # 2**-14 / 2**-11; 65504 / (4 * 3)
    ("float16", 1, (2.0**-3, F16_MAX / 4)),
    ("float16", 0, (2.0**-3, F16_MAX / 4)),         # an empty batch counts as one hit
    ("float16", 200_000, (2.0**-3, 2.0**-3)),       # the upper end never falls below the lower
    ("float32", 5, (2.0**-102, 1e30)),
    ("bfloat16", 1, (2.0**-118, 1e30)),
    ("bfloat16", 10**9, (2.0**-118, 3.3895313892515355e38 / 4e9)),  # bfloat16's largest / (4 * hits)
    ("float64", 7, (2.0**-969, 1e30)),
])
def test_upstream_ranges_cannot_overflow_their_sum_and_stay_normal_apart(dtype, hits, expected):
    assert upstream_range(dtype, hits) == pytest.approx(expected, rel=1e-15)


def test_values_are_zero_or_inside_the_magnitudes_at_the_drawing_width():
    strategy = _values("float16", (0.5, 100.0))
    assert repr(strategy) == _floats(0.5, 100.0, 16)
    drawn = _draws(strategy, 200)
    assert all(v == 0 or 0.5 <= abs(v) <= 100 for v in drawn)
    assert all(float(np.float16(v)) == v for v in drawn)  # exactly representable
    assert min(drawn) < 0 < max(drawn) and 0.0 in drawn


def test_bounds_are_rounded_to_the_drawing_width_and_bfloat16_is_drawn_as_float32():
    assert "floats(min_value=0.0999755859375, max_value=1.0, width=16)" in repr(_values("float16", (0.1, 1.0)))
    assert "floats(min_value=0.10000000149011612, max_value=1.0, width=32)" in repr(_values("bfloat16", (0.1, 1.0)))
    assert "floats(min_value=0.1, max_value=1.0)" in repr(_values("float64", (0.1, 1.0)))
    assert repr(table_values("float16")) == _floats(2.0**-12, F16_MAX / 4, 16)


# --- seeded arrays --------------------------------------------------------------------------------
def test_seeded_values_are_log_uniform_with_both_signs_and_some_zeros():
    values = seeded_values(1, (40_000,), "float64", 1e-3, 1e3)
    assert _same_bits(values, seeded_values(1, (40_000,), "float64", 1e-3, 1e3))
    assert not np.array_equal(values, seeded_values(2, (40_000,), "float64", 1e-3, 1e3))
    nonzero = np.abs(values[values != 0])
    assert 0.04 < 1 - nonzero.size / values.size < 0.06
    assert nonzero.min() >= 1e-3 and nonzero.max() <= 1e3
    assert nonzero.min() < 1.01e-3 and nonzero.max() > 0.99e3
    quartiles = np.percentile(np.log10(nonzero), [25, 50, 75])
    assert quartiles == pytest.approx([-1.5, 0.0, 1.5], abs=0.1)
    assert 0.47 < float(np.mean(values[values != 0] > 0)) < 0.53


def test_seeded_values_take_the_dtype_and_layout_and_never_pass_the_largest_magnitude():
    table = seeded_values(3, (50, 7), "bfloat16", 1.0, 2.0, "F")
    assert table.dtype == np_dtype("bfloat16") and table.shape == (50, 7)
    assert table.flags.f_contiguous and not table.flags.c_contiguous
    top = seeded_values(4, (100_000,), "float16", 1.0, F16_MAX)
    assert np.isfinite(top).all() and np.abs(top).max() <= F16_MAX


def test_seeded_ids_hold_every_boundary_row_shuffled_in_any_layout():
    ids = seeded_ids(3, (1025,), 70_000, "int64")
    assert ids.dtype == np.int64 and ids.shape == (1025,)
    assert set(boundary_ids(70_000)) <= set(ids.tolist())
    assert 0 <= ids.min() and ids.max() < 70_000
    assert ids[:11].tolist() != boundary_ids(70_000)  # shuffled, not all in front
    assert len(set(ids.tolist())) > 900               # and the rest random
    assert set(seeded_ids(0, (3,), 70_000, "int32").tolist()) == {0, 1, 127}  # as many as fit
    assert np.sum(seeded_ids(2, (900,), 3, "int64") == 0) > 200  # row 0 drawn like the others, not only as an edge
    assert _same_bits(seeded_ids(5, (4, 6), 9, "uint8", "F"), seeded_ids(5, (4, 6), 9, "uint8", "F"))
    assert not np.array_equal(seeded_ids(5, (300,), 1000, "int64"), seeded_ids(6, (300,), 1000, "int64"))
    for layout, shape in (("C", (4, 6)), ("F", (4, 6)), ("strided", (4, 6)), ("transposed", (3, 4, 5))):
        assert layouts.kind(seeded_ids(7, shape, 50, "int16", layout))[0] == layout


def test_negative_seeded_ids_are_the_same_rows_about_half_written_wrapped():
    plain = seeded_ids(8, (2000,), 300, "int32")
    negative = seeded_ids(8, (2000,), 300, "int32", negative=True)
    assert negative.dtype == np.int32
    assert np.array_equal(wrapped(negative, 300), plain)
    assert 0.45 < float(np.mean(negative < 0)) < 0.55 and negative.min() >= -300


def test_a_recipe_is_the_call_that_makes_the_array_again():
    assert _recipe("seeded_ids", 1, (2, 3), 9, "int8", "F", False) == "seeded_ids(1, (2, 3), 9, 'int8', 'F', False)"
    assert _recipe("f", 0.5, negative=True, layout="C") == "f(0.5, negative=True, layout='C')"
    assert _recipe("g") == "g()"


def test_seeds_cover_32_bits_drawn_as_four_choices():
    assert repr(_seeds()) == SEED_DRAW
    seeds = _draws(_seeds(), 200)
    assert all(0 <= s < 2**32 for s in seeds) and max(seeds) >= 2**31
    assert find(_seeds(), lambda s: s >= 2**24, settings=FAST) == 2**24


# --- small helpers ----------------------------------------------------------------------------
@pytest.mark.parametrize(("vocab", "expected"), [
    (1, [0]), (2, [0, 1]), (128, [0, 1, 127]), (129, [0, 1, 127, 128]),
    (200, [0, 1, 127, 128, 199]), (257, [0, 1, 127, 128, 255, 256]),
    (65536, [0, 1, 127, 128, 255, 256, 32767, 32768, 65535]),
    (70000, [0, 1, 127, 128, 255, 256, 32767, 32768, 65535, 65536, 69999]),
])
def test_boundary_ids_are_the_narrow_type_edges_inside_the_table(vocab, expected):
    assert boundary_ids(vocab) == expected


def test_index_limits_most_hits_and_wrapping_by_hand():
    assert _index_limit(["int8", "uint8"]) == 127
    assert _index_limit(["uint8", "int32"]) == 255
    assert _index_limit(["int64"]) == 2**63 - 1
    assert _most_hits(np.array([], dtype=np.int64), 5) == 1
    assert _most_hits(np.array([[1, 1], [2, 0]]), 3) == 2
    assert _most_hits(np.array([-1, 2, 0]), 3) == 2  # -1 is row 2
    out = wrapped(np.array([-128, 0, 127], dtype=np.int8), 200)
    assert out.dtype == np.int64 and out.tolist() == [72, 0, 127]  # widened before adding


def test_a_snippet_shows_a_recipe_where_there_is_one_and_the_array_otherwise():
    case = Case(np.zeros((3, 1)), np.array([2]), np.ones((1, 1)), {"weights": "seeded_values(...)"})
    shown = case.for_snippet(W="weights", ids="ids", up="upstream")
    assert shown["W"] == "seeded_values(...)" and shown["ids"] is case.ids and shown["up"] is case.upstream
    assert Case(np.zeros((3, 1)), np.array([2])).for_snippet(W="weights")["W"] is not None
    assert case.vocab == 3


# --- _array: element by element up to the limit, from a seed past it -------------------------
@pytest.mark.parametrize(("dtype", "raw"), [("float16", "float16"), ("bfloat16", "float32"),
                                            ("float32", "float32"), ("float64", "float64")])
def test_a_small_array_is_drawn_element_by_element_at_its_width(dtype, raw):
    values = np.arange(2048, dtype=raw).reshape(64, 32)
    draw = Script(values)
    array, recipe = _array(draw, dtype, (64, 32), (0.5, 2.0), "F")
    assert recipe is None
    assert draw.asked == [f"arrays(dtype={raw}, shape=(64, 32), elements={_floats(0.5, 2.0, _drawing_width(dtype))})"]
    assert array.dtype == np_dtype(dtype) and array.flags.f_contiguous and not array.flags.c_contiguous
    assert _same_bits(np.ascontiguousarray(array), values.astype(np_dtype(dtype)))


def test_a_large_array_comes_from_a_drawn_seed_with_its_recipe():
    draw = Script(99)
    array, recipe = _array(draw, "float32", (2049,), (0.5, 2.0), "strided")
    assert draw.asked == [SEED_DRAW]
    assert recipe == "seeded_values(99, (2049,), 'float32', 0.5, 2.0, 'strided')"
    assert _same_bits(array, seeded_values(99, (2049,), "float32", 0.5, 2.0, "strided"))
    assert layouts.kind(array)[0] == "strided"
    _, recipe = _array(Script(5), "float32", (3000,), (0.5, 2.0))  # the default layout: C
    assert recipe == "seeded_values(5, (3000,), 'float32', 0.5, 2.0, 'C')"


# --- _draw_small_ids ----------------------------------------------------------------------------
def test_small_ids_draw_rank_shape_values_signs_and_layout_in_that_order():
    raw = np.array([[0, 6], [3, 1], [5, 2]])
    mask = np.array([[True, False], [False, True], [True, True]])
    draw = Script(2, [3, 2], raw, mask, "transposed")
    ids, layout = _draw_small_ids(draw, 7, "int64", max_rank=3, max_side=5, max_ids=63, negative=True)
    assert draw.asked == [
        "integers(min_value=0, max_value=3)",
        "lists(integers(min_value=0, max_value=5), min_size=2, max_size=2)",
        "arrays(dtype=int64, shape=(3, 2), elements=integers(min_value=0, max_value=6))",
        "arrays(dtype=bool, shape=(3, 2))",
        LAYOUT_CHOICES,
    ]
    assert ids.tolist() == [[-7, 6], [3, -6], [-2, -5]] and layout == "transposed"


@pytest.mark.parametrize(("rank", "max_side", "max_ids", "side"), [
    (1, 5, 63, 5), (1, 100, 50, 50), (2, 100, 50, 7), (3, 100, 63, 3), (1, 5, 0, 0), (3, 2, 1 << 30, 2),
])
def test_the_side_of_small_ids_keeps_their_count_within_max_ids(rank, max_side, max_ids, side):
    shape = (side,) * rank
    draw = Script(rank, list(shape), np.zeros(shape, dtype=np.int64), "C")
    _draw_small_ids(draw, 4, "int64", max_rank=3, max_side=max_side, max_ids=max_ids, negative=False)
    assert draw.asked[1] == f"lists(integers(min_value=0, max_value={side}), min_size={rank}, max_size={rank})"
    assert len(draw.asked) == 4  # no sign mask drawn when nothing is negative


def test_a_0d_id_has_no_layout_and_an_empty_batch_no_signs():
    draw = Script(0, [], np.array(3), np.array(True))
    ids, layout = _draw_small_ids(draw, 4, "int64", max_rank=3, max_side=5, max_ids=10, negative=True)
    assert layout == "C" and ids.ndim == 0 and ids.tolist() == -1
    assert draw.asked[1] == "lists(integers(min_value=0, max_value=5), max_size=0)"
    assert len(draw.asked) == 4  # a 0-d id still gets a sign
    draw = Script(1, [0], np.zeros(0, dtype=np.int64), "F")
    _draw_small_ids(draw, 4, "int64", max_rank=3, max_side=5, max_ids=10, negative=True)
    assert draw.asked[-1] == LAYOUT_CHOICES and len(draw.asked) == 4


# --- _draw_lookup_case, branch by branch ----------------------------------------------------------
def _weights_asked(dtype: str, shape: tuple) -> str:
    """The repr of a small table's draw (float16 and float64 at their width, the rest as float32)."""
    raw = dtype if dtype in ("float16", "float64") else "float32"
    return f"arrays(dtype={raw}, shape={shape}, elements={_floats(*table_range(dtype), _drawing_width(dtype))})"


def _drawing_width(dtype: str) -> int:
    return {"float16": 16, "float64": 64}.get(dtype, 32)


def test_without_escalation_a_case_is_the_small_draw_as_it_came():
    ids = np.array([[3, 1], [0, 3]])
    weights = np.arange(12, dtype=np.float32).reshape(4, 3)
    upstream = np.ones((2, 2, 3), dtype=np.float32)
    draw = Script("int64", 4, 3, (ids, "F"), weights, upstream)
    case = _draw_lookup_case(draw, "float32", ("int64",), with_upstream=True, escalate=False)
    assert draw.asked == [
        "just('int64')",
        "integers(min_value=2, max_value=24)",
        "integers(min_value=1, max_value=5)",
        "_draw_small_ids(vocab=4, index_dtype='int64', max_rank=3, max_side=5, max_ids=1_073_741_824, negative=False)",
        _weights_asked("float32", (4, 3)),
        f"arrays(dtype=float32, shape=(2, 2, 3), elements={_floats(2.0**-102, 1e30, 32)})",
    ]
    assert case.ids.dtype == np.int64 and case.ids.tolist() == ids.tolist() and layouts.kind(case.ids)[0] == "F"
    assert _same_bits(case.weights, weights) and case.weights.flags.c_contiguous
    assert _same_bits(case.upstream, upstream) and case.recipes == {}


def test_a_narrow_index_type_caps_the_vocabulary_and_unsigned_ids_never_wrap():
    draw = Script("int8", 150, 1, (np.array([127]), "C"), np.zeros((128, 1), dtype=np.float32))
    case = _draw_lookup_case(draw, "float32", ("int8",), max_vocab=200, negative=True, escalate=False)
    assert case.vocab == 128 and case.ids.dtype == np.int8
    assert draw.asked[3].endswith("max_side=5, max_ids=1_073_741_824, negative=True)") and "vocab=128" in draw.asked[3]
    draw = Script("uint8", 5, 1, (np.array([4]), "C"), np.zeros((5, 1), dtype=np.float32))
    _draw_lookup_case(draw, "float32", ("uint8", "int32"), negative=True, max_side=3, escalate=False)
    assert draw.asked[0] == "sampled_from(('uint8', 'int32'))"
    assert draw.asked[3] == ("_draw_small_ids(vocab=5, index_dtype='uint8', max_rank=3, max_side=3, "
                             "max_ids=1_073_741_824, negative=False)")


def test_a_boundary_vocabulary_moves_the_small_ids_onto_its_edge_rows_wrapped_where_they_were():
    small = np.array([-1, 0, 3, 4])
    draw = Script("int32", 5, 2, (small, "strided"), 2, 65536, 1, 9, 0, True, 12345)
    case = _draw_lookup_case(draw, "float16", ("int32", "int64"), max_vocab=6, negative=True)
    assert draw.asked == [
        "sampled_from(('int32', 'int64'))",
        "integers(min_value=2, max_value=6)",
        "integers(min_value=1, max_value=5)",
        "_draw_small_ids(vocab=5, index_dtype='int32', max_rank=3, max_side=5, max_ids=1_073_741_824, negative=True)",
        "integers(min_value=0, max_value=2)",
        f"sampled_from({BOUNDARY_VOCABS!r})",
        "integers(min_value=0, max_value=1)",
        f"sampled_from({WIDE_DIMS!r})",
        "integers(min_value=0, max_value=3)",  # no square table past 128 rows: not asked
        "booleans()",
        SEED_DRAW,
    ]
    # Rows 4, 0, 3, 4 of 5 are edges 4, 0, 3, 4 of 65536's nine: 255, 0, 128, 255; -1 stays wrapped.
    assert case.ids.dtype == np.int32 and case.ids.tolist() == [255 - 65536, 0, 128, 255]
    assert layouts.kind(case.ids)[0] == "strided"
    assert case.recipes == {"weights": "seeded_values(12345, (65536, 9), 'float16', 0.000244140625, 16376.0, 'F')"}
    assert case.weights.flags.f_contiguous and case.weights.shape == (65536, 9)
    assert case.upstream is None


def test_an_escalated_vocabulary_is_capped_by_the_index_type_and_wraps_edges_modulo():
    draw = Script("uint8", 3, 1, (np.array(2), "C"), 2, 65539, 0, 0, False, np.zeros((256, 1), np.float32))
    case = _draw_lookup_case(draw, "float32", ("uint8",), max_vocab=6)
    assert case.vocab == 256 and case.ids.tolist() == 127 and case.ids.ndim == 0  # edge 2 of [0, 1, 127, ...]
    assert draw.asked[7] == "integers(min_value=0, max_value=3)"  # 256 rows: no square table offered
    draw = Script("int64", 3, 1, (np.array([2, 1]), "C"), 1, 9, 0, 0, 0, False, np.zeros((9, 1), np.float32))
    case = _draw_lookup_case(draw, "float32", ("int64",), max_vocab=6)
    assert draw.asked[5] == "integers(min_value=7, max_value=300)"
    assert draw.asked[7] == "integers(min_value=0, max_value=4)"  # 9 rows: a square table is offered
    assert case.ids.tolist() == [8, 1]  # boundary_ids(9) == [0, 1, 8]: ids 2 and 1 are edges 2 and 1


def test_a_long_batch_replaces_the_small_ids_within_the_one_hot_and_summation_budgets():
    # bfloat16 allows 129 hits per row: with 7 rows a batch may hold 7 * 129 // 2 = 451 ids.
    upstream = np.ones((64, 4, 7), dtype=np.float32)
    weights = np.ones((7, 7), dtype=np.float32)
    draw = Script("int64", 6, 4, (np.array([5, 5]), "C"), 1, 7, 0, 4, 3, 256, 77, (64, 4), "F", False,
                  weights, upstream)
    case = _draw_lookup_case(draw, "bfloat16", ("int64",), max_vocab=6, with_upstream=True, onehot=True)
    ids = seeded_ids(77, (64, 4), 7, "int64", "F", False)
    hits = int(np.unique(ids, return_counts=True)[1].max())
    assert 3.3895313892515355e38 / (4 * hits) > 1e30  # so the upper end is the 1e30 cap
    assert draw.asked == [
        "just('int64')",
        "integers(min_value=2, max_value=6)",
        "integers(min_value=1, max_value=5)",
        "_draw_small_ids(vocab=6, index_dtype='int64', max_rank=3, max_side=5, max_ids=63, negative=False)",
        "integers(min_value=0, max_value=2)",
        "integers(min_value=7, max_value=300)",
        "integers(min_value=0, max_value=1)",
        "integers(min_value=0, max_value=4)",
        "integers(min_value=0, max_value=3)",
        "sampled_from([255, 256, 257])",
        SEED_DRAW,
        "sampled_from([(256,), (64, 4)])",
        LAYOUT_CHOICES,
        "booleans()",
        _weights_asked("bfloat16", (7, 7)),
        f"arrays(dtype=float32, shape=(64, 4, 7), elements={_floats(2.0**-118, 1e30, 32)})",
    ]
    assert _same_bits(case.ids, ids) and case.weights.shape == (7, 7) and case.upstream.shape == (64, 4, 7)
    assert case.recipes == {"ids": "seeded_ids(77, (64, 4), 7, 'int64', 'F', False)"}
    assert case.upstream.dtype == np_dtype("bfloat16")


def test_no_long_batch_is_offered_when_none_fits_the_one_hot_budget():
    # 2**22 cells over 65539 rows leave 63 ids: none of the long batches fits, nothing is asked.
    draw = Script("int64", 3, 1, (np.array(2), "C"), 2, 65539, 0, False, 5)
    case = _draw_lookup_case(draw, "float32", ("int64",), onehot=True)
    assert draw.asked[-2:] == ["booleans()", SEED_DRAW] and len(draw.asked) == 9
    assert case.ids.tolist() == 127
    assert case.recipes["weights"] == "seeded_values(5, (65539, 1), 'float32', 4.70197740328915e-38, 1e+30, 'C')"


@pytest.mark.parametrize(("vocab", "square_offered"), [(128, True), (129, False)])
def test_a_square_table_is_offered_up_to_128_rows(vocab, square_offered):
    draw = Script("int64", 3, 1, (np.array([1]), "C"), 1, vocab, 0, *([0] if square_offered else []), 0, False,
                  np.zeros((vocab, 1), np.float32))
    _draw_lookup_case(draw, "float32", ("int64",))
    assert (draw.asked[7] == "integers(min_value=0, max_value=4)") is square_offered


def test_the_one_hot_budget_admits_a_batch_of_exactly_its_cells():
    # 256 ids x 16384 rows is 2**22 cells exactly: allowed; 257 ids are one row of cells too many.
    draw = Script("int64", 16384, 1, (np.array([1]), "C"), 0, 0, 3, 256, 7, (256,), "C", False, 11)
    _draw_lookup_case(draw, "float32", ("int64",), max_vocab=20_000, onehot=True)
    assert draw.asked[7] == "sampled_from([255, 256])"


def test_the_summation_budget_admits_a_batch_of_exactly_half_the_hits_times_the_rows():
    # float16 rows take 1025 hits: over 2 rows a batch may hold 1025 * 2 // 2 = 1025 ids, not 4097.
    draw = Script("int64", 2, 1, (np.array([1, 0]), "C"), 0, 0, 0, 3, 1025, 9, (1025,), "C", False,
                  np.ones((2, 1), np.float16), np.ones((1025, 1), np.float16))
    case = _draw_lookup_case(draw, "float16", ("int64",), with_upstream=True)
    assert draw.asked[8] == "sampled_from([255, 256, 257, 1023, 1025])"
    assert case.ids.shape == (1025,) and case.upstream.shape == (1025, 1)


# --- real draws: what every case keeps -----------------------------------------------------------
@pytest.mark.parametrize("options", [
    dict(dtype="float32", index_dtypes=("int32", "int64"), negative=True),
    dict(dtype="bfloat16", index_dtypes=("int64",), max_vocab=6, with_upstream=True, onehot=True),
    dict(dtype="float16", index_dtypes=("uint8", "int8"), with_upstream=True, negative=True),
])
def test_every_generated_case_is_well_formed(options):
    options = dict(options)
    dtype, index_dtypes = options.pop("dtype"), options.pop("index_dtypes")
    cases = _draws(lookup_cases(dtype, index_dtypes, **options), 120)
    lo, hi = (float(np.asarray(x).astype(np_dtype(dtype))) for x in table_range(dtype))  # as stored
    for case in cases:
        assert case.ids.dtype.name in index_dtypes and case.weights.dtype == np_dtype(dtype)
        assert case.vocab <= _index_limit([case.ids.dtype.name]) + 1
        rows = wrapped(case.ids, case.vocab)
        assert ((0 <= rows) & (rows < case.vocab)).all()
        assert options.get("negative") or not (case.ids < 0).any()
        magnitudes = np.abs(case.weights.astype(np.float64))
        assert ((magnitudes == 0) | ((lo <= magnitudes) & (magnitudes <= hi))).all()
        if options.get("onehot"):
            assert case.ids.size * case.vocab <= ONEHOT_CELLS
        if options.get("with_upstream"):
            assert case.upstream.shape == case.ids.shape + case.weights.shape[1:]
            # |upstream| summed into any one row stays within a quarter of the largest value (up
            # to the bound's rounding to the dtype): no sum can overflow.
            sums = np.zeros(case.weights.shape)
            np.add.at(sums, rows.reshape(-1), np.abs(case.upstream.astype(np.float64)).reshape(-1, sums.shape[1]))
            assert sums.max(initial=0) <= largest_finite(dtype) / 4 * (1 + 2.0**-10)
        for field, recipe in case.recipes.items():
            again = eval(recipe, {"seeded_values": seeded_values, "seeded_ids": seeded_ids})  # noqa: S307
            assert _same_bits(again, getattr(case, field))
    if "uint8" in index_dtypes:
        assert any(c.ids.dtype == np.int8 and (c.ids < 0).any() for c in cases)


def test_without_escalation_cases_stay_small():
    for case in _draws(lookup_cases("float32", ("int64",), max_vocab=9, escalate=False), 100):
        assert 2 <= case.vocab <= 9 and 1 <= case.weights.shape[1] <= 5
        assert all(side <= 5 for side in case.ids.shape) and case.recipes == {}
        assert case.weights.flags.c_contiguous


def test_the_escalations_reach_every_boundary_vocabulary_width_and_long_batch():
    cases = _draws(lookup_cases("float32", ("int64",)), 400)
    assert set(BOUNDARY_VOCABS) <= {c.vocab for c in cases}
    assert {c.weights.shape[1] for c in cases} & set(WIDE_DIMS) - set(range(6))
    assert {c.ids.size for c in cases} & set(LARGE_BATCHES)
    grown = [c.vocab for c in cases if c.vocab not in BOUNDARY_VOCABS]
    assert any(25 <= v <= 300 for v in grown) and max(grown) <= 300
    squares = [c for c in cases if c.weights.shape[1] == c.vocab > 5]
    assert squares and all(c.vocab <= 128 for c in squares)


@pytest.mark.parametrize(("what", "condition", "kwargs"), [
    ("the smallest table", lambda c: c.vocab == 2, {}),
    ("a 25-row table, one past max_vocab", lambda c: c.vocab == 25, {}),
    ("a 300-row table", lambda c: c.vocab == 300, {}),
    ("a 5-wide small table", lambda c: c.weights.shape[1] == 5 and c.vocab <= 24, {}),
    ("an int8 table of 128 rows", lambda c: c.vocab == 128, {"index_dtypes": ("int8",)}),
])
def test_the_edges_of_each_range_are_reached(what, condition, kwargs):
    strategy = lookup_cases("float32", kwargs.get("index_dtypes", ("int64",)))
    assert condition(find(strategy, condition, settings=settings(FAST, max_examples=3000))), what


# --- shrinking: a failure is reported on a small case ---------------------------------------------
@pytest.mark.parametrize(("what", "condition"), [
    ("a long batch", lambda c: c.ids.size > 300),
    ("a duplicate id", lambda c: c.ids.size >= 2 and np.unique(c.ids).size < c.ids.size),
])
def test_a_failure_that_needs_no_large_table_is_not_reported_on_one(what, condition):
    """Seeds cost four choices, so a seeded array is never 'simpler' than a small one."""
    found = find(lookup_cases("float32", ("int32", "int64"), negative=True), condition,
                 settings=settings(FAST, max_examples=1000))
    assert condition(found) and found.vocab <= 24, what


def test_the_boundary_and_minimal_cases_are_built_as_documented():
    cases = boundary_cases("float32", "int64", with_upstream=True, onehot=False)
    shapes = [(c.vocab, c.weights.shape[1], c.ids.shape, layouts.kind(c.ids)[0], c.weights.flags.f_contiguous)
              for c in cases]
    assert shapes == [(65539, 17, (1025,), "C", True), (9, 9, (4, 6), "F", False),
                      (40, 33, (3, 5, 7), "transposed", False), (300, 16, (257,), "strided", True),
                      (5, 3, (), "C", False)]
    # table_range: 2**-124 .. 1e30; upstream_range with a few hits: 2**-102 .. 1e30
    table, up = "'float32', 4.70197740328915e-38, 1e+30", "'float32', 1.9721522630525295e-31, 1e+30"
    assert [c.recipes["weights"] for c in cases] == [
        f"seeded_values(0, (65539, 17), {table}, 'F')", f"seeded_values(1, (9, 9), {table}, 'C')",
        f"seeded_values(2, (40, 33), {table}, 'C')", f"seeded_values(3, (300, 16), {table}, 'F')",
        f"seeded_values(4, (5, 3), {table}, 'C')"]
    assert [c.recipes["ids"] for c in cases] == [
        "seeded_ids(0, (1025,), 65539, 'int64', 'C')", "seeded_ids(1, (4, 6), 9, 'int64', 'F')",
        "seeded_ids(2, (3, 5, 7), 40, 'int64', 'transposed')", "seeded_ids(3, (257,), 300, 'int64', 'strided')",
        "seeded_ids(4, (), 5, 'int64', 'C')"]
    assert [c.recipes["upstream"] for c in cases] == [
        f"seeded_values(100, (1025, 17), {up})", f"seeded_values(101, (4, 6, 9), {up})",
        f"seeded_values(102, (3, 5, 7, 33), {up})", f"seeded_values(103, (257, 16), {up})",
        f"seeded_values(104, (3,), {up})"]
    for case in cases:
        assert case.upstream.shape == case.ids.shape + (case.weights.shape[1],)
        lo, hi = upstream_range("float32", _most_hits(case.ids, case.vocab))
        magnitudes = np.abs(case.upstream[case.upstream != 0])
        assert magnitudes.min() >= lo and magnitudes.max() <= hi
        for field, recipe in case.recipes.items():
            again = eval(recipe, {"seeded_values": seeded_values, "seeded_ids": seeded_ids})  # noqa: S307
            assert _same_bits(again, getattr(case, field))
    narrow = boundary_cases("float16", "uint8", with_upstream=False, onehot=True)
    assert [c.vocab for c in narrow] == [256, 9, 40, 256, 5] and all(c.upstream is None for c in narrow)
    assert narrow[0].ids.shape == (1025,) and narrow[0].weights.dtype == np.float16
    onehot = boundary_cases("float32", "int64", with_upstream=False, onehot=True)
    assert onehot[0].ids.shape == (ONEHOT_CELLS // 65539,) == (63,) and onehot[3].ids.shape == (257,)
    assert [c.vocab for c in boundary_cases("float32", "int16", with_upstream=False, onehot=False)][0] == 32768


def test_the_minimal_cases_are_the_four_smallest_bugs():
    cases = minimal_cases("bfloat16", "int32", with_upstream=True, negative=True)
    assert [c.weights.tolist() for c in cases] == [[[1.0], [2.0]], [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
                                                   [[1.0, -2.0], [3.0, 4.0]], [[1.0], [2.0], [3.0]]]
    assert [c.ids.tolist() for c in cases] == [[0, 0], [[2, 0], [1, 2]], 1, [-1, 0, -1]]
    assert all(c.ids.dtype == np.int32 and c.weights.dtype == np_dtype("bfloat16") for c in cases)
    assert all(c.upstream.shape == c.ids.shape + c.weights.shape[1:] and (c.upstream == 1).all() for c in cases)
    assert all(c.upstream.dtype == np_dtype("bfloat16") for c in cases)
    assert len(minimal_cases("float32", "uint8", with_upstream=False, negative=True)) == 3
    assert len(minimal_cases("float32", "int64", with_upstream=False, negative=False)) == 3
    assert all(c.upstream is None for c in minimal_cases("float32", "int64", with_upstream=False))
