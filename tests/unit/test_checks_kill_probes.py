"""In-process tests of the one-hot twin check, the index-dtype check and the bad-id probes
(negative_index, out_of_range): which twin is loaded, what is observed, and the exact failure
text (message and repro snippet) a user acts on."""

import sys
import types

import numpy as np
import pytest
from broken_adapters import Faithful, _declared

from harness import checks
from harness.checks import (
    Context,
    WrongEvenIfDeclared,
    _consistent_outcomes,
    _index_tables,
    _negative_ids,
    _out_of_range_ids,
    _twin,
    probe_one,
    probe_tables,
    run_check,
)
from harness.errors import HarnessError
from harness.isolation import IsolationFailed

HEAD = ("import numpy as np\nfrom harness import oracle\nfrom harness.dtypes import np_dtype\n"
        "from harness.registry import load_adapter\nfrom harness.strategies import seeded_ids, seeded_values\n")


def _head(spec, adapter_id, device="cpu"):
    return HEAD + f"adapter = load_adapter({spec!r}, device={device!r}, adapter_id={adapter_id!r})\n"


# --- _twin -------------------------------------------------------------------------------------
class _Loads:
    """Stands in for harness.registry.load_adapter: records how the twin is asked for."""

    def __init__(self):
        self.calls = []

    def __call__(self, spec, device="cpu", adapter_id=None):
        self.calls.append((spec, device, adapter_id))
        return "twin"


def _onehot(twin, device="cpu", source=""):
    adapter = Faithful()
    adapter.id, adapter.variant, adapter.gather_twin, adapter.device, adapter.source = (
        "my-onehot", "onehot", twin, device, source)
    return adapter


@pytest.fixture
def loads(monkeypatch):
    from harness import registry

    fake = _Loads()
    monkeypatch.setattr(registry, "load_adapter", fake)
    return fake


def test_twin_builtin_id_on_a_device_is_loaded_by_its_full_id_on_that_device(loads):
    assert _twin(_onehot("numpy-gather-cuda", device="cuda", source="x")) == "twin"
    assert loads.calls == [("numpy-gather-cuda", "cuda", None)]


def test_twin_builtin_id_on_cpu_and_module_factory_twin(loads):
    assert _twin(_onehot("numpy-gather")) == "twin"
    assert _twin(_onehot("mod:make", device="cuda", source="other:factory")) == "twin"
    assert loads.calls == [("numpy-gather", "cpu", None), ("mod:make", "cuda", None)]


def test_twin_made_by_the_adapters_own_factory(loads):
    assert _twin(_onehot("my-gather", device="cuda", source="plug:make")) == "twin"
    assert loads.calls == [("plug:make", "cuda", "my-gather")]


@pytest.mark.parametrize("twin, device, source", [
    ("numpy-gather-cpu", "cpu", ""),          # a -cpu suffix is not stripped on the CPU
    ("numpy-gather-cuda", "cpu", "builtin"),  # nor a device suffix of another device
    ("my-gather", "cpu", "not-a-factory"),
])
def test_twin_that_cannot_be_found_is_a_one_line_error(loads, twin, device, source):
    with pytest.raises(HarnessError) as info:
        _twin(_onehot(twin, device, source))
    assert str(info.value) == (f"my-onehot: gather_twin {twin!r} is neither a registered adapter id, "
                               f"a 'module:factory', nor an adapter made by its own factory {source!r}")
    assert loads.calls == []


# --- _onehot_only -------------------------------------------------------------------------------
GATHER_SIDE = "compares a one-hot adapter with its gather twin; this adapter is the gather side"


def test_onehot_check_applies_only_to_a_onehot_adapter_with_a_twin():
    gather_with_twin = Faithful()
    gather_with_twin.gather_twin = "faithful"  # gather adapters may name themselves
    for adapter in (Faithful(), gather_with_twin, _onehot(None)):
        result = run_check(adapter, "onehot_agrees_with_gather")
        assert (result.status, result.detail) == ("not_applicable", GATHER_SIDE)
    assert checks._onehot_only(_onehot("numpy-gather")) is None


# --- _agrees_with_gather ----------------------------------------------------------------------
class OneHot(Faithful):
    """A correct one-hot embedding (exact float64 matmul); records the ids dtypes it sees."""

    id, variant = "kp-onehot", "onehot"

    def __init__(self, twin="kp_twins:faithful"):
        self.gather_twin = twin
        self.seen = []

    def _hot(self, weights, ids):
        ids = np.asarray(ids).astype(np.int64) % weights.shape[0]
        return (ids[..., None] == np.arange(weights.shape[0])).astype(np.float64)

    def forward(self, weights, ids):
        self.seen.append((np.asarray(ids).dtype.name, np.asarray(ids).size, weights.shape))
        return (self._hot(weights, ids) @ weights.astype(np.float64)).astype(weights.dtype)

    def gradient(self, weights, ids, upstream):
        hot = self._hot(weights, ids).reshape(-1, weights.shape[0])
        up = np.asarray(upstream, np.float64).reshape(-1, weights.shape[1])
        return (hot.T @ up).astype(weights.dtype)


class Tf32OneHot(OneHot):
    """TF32 matmul: every value off by a relative 2**-12 (within u = 2**-11), gradient too."""

    id = "kp-onehot-tf32"
    declared = _declared(matmul_precision="tf32")

    def forward(self, weights, ids):
        out = super().forward(weights, ids).astype(np.float64)
        return (out * (1 + 2.0**-12)).astype(weights.dtype)

    def gradient(self, weights, ids, upstream):
        return (super().gradient(weights, ids, upstream).astype(np.float64) * (1 + 2.0**-12)).astype(weights.dtype)


class Tf32WrongRows(Tf32OneHot):
    id = "kp-onehot-tf32-wrong"

    def forward(self, weights, ids):
        return super().forward(weights, ids) + np.ones((), weights.dtype)


class ForwardOffByOne(OneHot):
    id = "kp-onehot-plus-one"

    def forward(self, weights, ids):
        return super().forward(weights, ids) + np.ones((), weights.dtype)


class GradientOff(OneHot):
    """Three float32 ulps too much in row 0 of the first case (sum of two duplicate ones):
    beyond twice the summation bound (2 ulps there), within three times it."""

    id = "kp-onehot-grad-off"

    def gradient(self, weights, ids, upstream):
        grad = super().gradient(weights, ids, upstream)
        if weights.shape == (2, 1) and np.asarray(ids).tolist() == [0, 0]:
            grad[0, 0] = np.float32(2 + 3 * 2.0**-22)
        return grad


class ForwardOnly(OneHot):
    id = "kp-onehot-forward-only"
    declared = _declared(gradient="none")

    def gradient(self, weights, ids, upstream):
        raise AssertionError("a forward-only adapter's gradient must not be asked for")


class ForwardOnlyTwin(Faithful):
    id = "kp-forward-only-gather"
    declared = _declared(gradient="none")

    def gradient(self, weights, ids, upstream):
        raise AssertionError("a forward-only twin's gradient must not be asked for")


class CountingTwin(Faithful):
    id = "kp-gather"

    def __init__(self):
        self.calls = 0

    def forward(self, weights, ids):
        self.calls += 1
        return super().forward(weights, ids)


class TwinRaises(Faithful):
    id = "kp-gather-raises"

    def forward(self, weights, ids):
        raise ValueError("twin broke")


class LookupRaises(OneHot):
    id = "kp-onehot-raises"

    def forward(self, weights, ids):
        raise ValueError("onehot broke")


@pytest.fixture
def twins(monkeypatch):
    made = {}
    module = types.ModuleType("kp_twins")

    def factory(cls):
        def make():
            made[cls.__name__] = cls()
            return made[cls.__name__]
        return make

    module.faithful = factory(Faithful)
    module.counting = factory(CountingTwin)
    module.forward_only = factory(ForwardOnlyTwin)
    module.raises = factory(TwinRaises)
    monkeypatch.setitem(sys.modules, "kp_twins", module)
    return made


FIRST_CASE = ("W = np.array([1.0, 2.0]).reshape((2, 1)).astype(np_dtype('float32'))\n"
              "ids = np.array([0, 0], dtype='int32')\n"
              "up = np.array([1.0, 1.0]).reshape((2, 1)).astype(np_dtype('float32'))\n")


@pytest.mark.parametrize("cls", [OneHot, Tf32OneHot])
def test_a_correct_onehot_adapter_agrees_and_every_example_is_counted(twins, cls):
    adapter = cls("kp_twins:counting")
    result = run_check(adapter, "onehot_agrees_with_gather")
    assert (result.status, result.detail) == ("passed", ""), result.detail
    assert result.examples == len(adapter.seen) == twins["CountingTwin"].calls >= 3 + 6
    # The hand-picked smallest cases come first, in the first preferred index dtype.
    assert [s[0] for s in adapter.seen[:3]] == ["int32"] * 3
    assert {s[0] for s in adapter.seen} == {"int32", "int64"}
    # Generated one-hot cases keep ids x vocab within the one-hot budget, and escalate.
    assert all(size * shape[0] <= checks.ONEHOT_CELLS for _, size, shape in adapter.seen)
    assert max(shape[0] for _, _, shape in adapter.seen) > 12


def test_a_forward_only_side_skips_the_gradient_comparison(twins):
    assert run_check(ForwardOnly(), "onehot_agrees_with_gather").status == "passed"
    passed = run_check(OneHot("kp_twins:forward_only"), "onehot_agrees_with_gather")
    assert (passed.status, passed.detail) == ("passed", "")


def test_onehot_forward_differing_from_the_twin_fails_with_the_first_case(twins):
    result = run_check(ForwardOffByOne(), "onehot_agrees_with_gather")
    assert result.status == "failed"
    assert result.detail == (
        "harness.checks.ConformanceFailure: kp-onehot-plus-one: one-hot forward differs from its gather twin "
        "faithful\n--- reproduce ---\n" + _head("kp-onehot-plus-one", "kp-onehot-plus-one") + FIRST_CASE
        + "print(adapter.lookup(W, ids), load_adapter('faithful').lookup(W, ids))")


def test_tf32_onehot_forward_beyond_its_tolerance_fails(twins):
    result = run_check(Tf32WrongRows(), "onehot_agrees_with_gather")
    assert result.status == "failed"
    assert "kp-onehot-tf32-wrong: one-hot forward differs from its gather twin faithful\n" in result.detail


def test_onehot_gradient_beyond_twice_the_summation_bound_fails(twins):
    result = run_check(GradientOff(), "onehot_agrees_with_gather")
    assert result.status == "failed"
    assert result.detail == (
        "harness.checks.ConformanceFailure: kp-onehot-grad-off: one-hot gradient differs from its gather twin "
        "faithful beyond both summation bounds\n--- reproduce ---\n" + _head("kp-onehot-grad-off", "kp-onehot-grad-off")
        + FIRST_CASE + "print(adapter.weight_grad(W, ids, up), load_adapter('faithful').weight_grad(W, ids, up))")


@pytest.mark.parametrize("adapter_cls, twin, who", [(LookupRaises, "kp_twins:faithful", "onehot"),
                                                     (OneHot, "kp_twins:raises", "twin")])
def test_a_crash_on_either_side_shows_the_whole_case(twins, adapter_cls, twin, who):
    adapter = adapter_cls(twin)
    result = run_check(adapter, "onehot_agrees_with_gather")
    assert result.status == "failed"
    text = result.detail.split("\n--- reproduce ---\n")[1].split("\n  File")[0]
    assert text.startswith(_head(adapter.id if who == "onehot" else "kp_twins:raises",
                                 adapter.id if who == "onehot" else "kp-gather-raises") + FIRST_CASE)
    assert f"{who} broke" in result.detail


def test_a_case_with_recipes_is_shown_by_its_recipes(twins, monkeypatch):
    """A large generated case is printed as the recipe that rebuilds it, not as a literal."""
    case = checks.Case(np.array([[1.0], [2.0]], np.float32), np.array([0, 0], np.int32),
                       np.ones((2, 1), np.float32), {"weights": "W_RECIPE", "ids": "IDS_RECIPE",
                                                     "upstream": "UP_RECIPE"})
    monkeypatch.setattr(checks, "minimal_cases", lambda *a, **k: [case])

    class GradRaises(OneHot):
        id = "kp-grad-raises"

        def gradient(self, weights, ids, upstream):
            raise ValueError("grad broke")

    for adapter in (GradRaises(), OneHot("kp_twins:raises")):
        detail = run_check(adapter, "onehot_agrees_with_gather").detail
        assert "W = W_RECIPE\nids = IDS_RECIPE\nup = UP_RECIPE\nprint(adapter." in detail, detail

    class TwinGradRaises(Faithful):
        id = "kp-twin-grad-raises"

        def gradient(self, weights, ids, upstream):
            raise ValueError("twin grad broke")

    monkeypatch.setattr(sys.modules["kp_twins"], "grad_raises", lambda: TwinGradRaises(), raising=False)
    detail = run_check(OneHot("kp_twins:grad_raises"), "onehot_agrees_with_gather").detail
    assert "twin grad broke" in detail
    assert "W = W_RECIPE\nids = IDS_RECIPE\nup = UP_RECIPE\nprint(adapter.weight_grad(W, ids, up))" in detail, detail


# --- probes: the tables and the outcomes -----------------------------------------------------
def test_probe_tables_are_two_tables_no_outcome_confuses():
    table_a, table_b = probe_tables(2)
    assert table_a.dtype == table_b.dtype == np.float32
    assert table_a.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert table_b.tolist() == [[997.0, 994.0, 991.0], [988.0, 985.0, 982.0]]


def test_consistent_outcomes_names_every_outcome_a_row_matches():
    w = probe_tables(5)[0]
    assert _consistent_outcomes(w[[4]], w, -1) == {"wrap"}
    assert _consistent_outcomes(w[[0]], w, -1) == {"clamp"}
    assert _consistent_outcomes(w[[3]], w, -2) == {"wrap"}
    assert _consistent_outcomes(w[[4]], w, 7) == {"clamp"}
    assert _consistent_outcomes(w[[2]], w, 7) == {"wrap"}
    assert _consistent_outcomes(w[[0]], w, 5) == {"wrap"}
    assert _consistent_outcomes(w[[4]], w, 4) == {"wrap", "clamp"}
    assert _consistent_outcomes(w[[1]], w, 1) == {"wrap", "clamp"}
    assert _consistent_outcomes(np.zeros((1, 3), np.float32), w, 5) == {"zeros"}
    assert _consistent_outcomes(np.ones((1, 3), np.float32), w, 5) == set()
    assert _consistent_outcomes(np.array([[0.0, 1.0, 0.0]], np.float32), w, 5) == set()
    assert _consistent_outcomes(np.full((1, 3), np.nan, np.float32), w, 5) == {"nan"}
    assert _consistent_outcomes(np.array([[np.nan, 0.0, 0.0]], np.float32), w, 5) == set()
    import ml_dtypes
    bf = w.astype(ml_dtypes.bfloat16)
    assert _consistent_outcomes(np.full((1, 3), np.nan, ml_dtypes.bfloat16), bf, 5) == {"nan"}


def test_the_bad_ids_probed():
    assert _negative_ids(5, "int32") == [-1, -2, -5]
    assert _negative_ids(7, "int8") == [-1, -2, -7]
    assert _negative_ids(5, "uint64") == []
    assert _out_of_range_ids(5, "int64") == [5, 6, 2**31 - 1]
    assert _out_of_range_ids(5, "uint32") == [5, 6, 2**31 - 1]
    assert _out_of_range_ids(9, "int16") == [9, 10, 2**15 - 1]
    assert _out_of_range_ids(5, "uint8") == [5, 6, 255]


# --- probe_one ------------------------------------------------------------------------------
class Probe(Faithful):
    """Bad ids (outside [0, V)) give what ``mode`` says; ids of other dtypes are refused."""

    id = "kp-probe"

    def __init__(self, mode="wrap", declared=None, index_dtypes=("int32", "int64")):
        self.mode = mode
        self.declared = declared or _declared(index_dtypes=index_dtypes)
        self.calls = []

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        self.calls.append((weights[0, 0].item(), ids.dtype.name, ids.tolist()))
        vocab = weights.shape[0]
        bad = (ids < 0) | (ids >= vocab)
        if not bad.any() or self.mode == "wrap":
            return np.take(weights, ids % vocab, axis=0)
        if self.mode == "clamp":
            return np.take(weights, np.clip(ids, 0, vocab - 1), axis=0)
        if self.mode == "zeros":
            return np.zeros(ids.shape + weights.shape[1:], weights.dtype)
        if self.mode == "nan":
            return np.full(ids.shape + weights.shape[1:], np.nan, weights.dtype)
        if self.mode == "same-garbage":
            return np.full(ids.shape + weights.shape[1:], 7, weights.dtype)
        if self.mode == "zeros-then-raise":
            if weights[0, 0] != 1:
                raise ValueError("second table")
            return np.zeros(ids.shape + weights.shape[1:], weights.dtype)
        if self.mode == "wide":
            return np.zeros(ids.shape + (4,), weights.dtype)
        if self.mode == "wide-second":
            return np.zeros(ids.shape + ((3,) if weights[0, 0] == 1 else (4,)), weights.dtype)
        if self.mode == "first-wrap-then-clamp":  # -1 wraps, -2 and -V clamp
            return np.take(weights, ids % vocab if int(ids.reshape(-1)[0]) == -1 else np.clip(ids, 0, vocab - 1),
                           axis=0)
        raise IndexError(f"index {ids.tolist()} is out of bounds\nsecond line")


def test_probe_one_judges_a_bad_id_against_both_tables():
    tables = probe_tables(5)
    adapter = Probe("clamp")
    assert probe_one(adapter, tables, -1, "int32") == (
        {"clamp"}, "rows [[1.0, 2.0, 3.0]] / [[997.0, 994.0, 991.0]]")
    assert adapter.calls == [(1.0, "int32", [-1]), (997.0, "int32", [-1])]
    assert probe_one(Probe("wrap"), tables, 7, "int64") == (
        {"wrap"}, "rows [[7.0, 8.0, 9.0]] / [[979.0, 976.0, 973.0]]")
    assert probe_one(Probe("raise"), tables, 5, "int64") == ({"raise"}, "IndexError: index [5] is out of bounds")
    assert probe_one(Probe("same-garbage"), tables, 5, "int64") == (
        {"undefined"}, "rows that do not follow the table: [[7.0, 7.0, 7.0]] / [[7.0, 7.0, 7.0]]")
    assert probe_one(Probe("zeros-then-raise"), tables, 5, "int64") == (
        {"undefined"}, "raised for one table but not the other: ValueError")
    assert probe_one(Probe("wide"), tables, 5, "int64") == ({"undefined"}, "output shape (1, 4), expected (1, 3)")
    assert probe_one(Probe("wide-second"), tables, 5, "int64") == (
        {"undefined"}, "output shape (1, 3), expected (1, 3)")


def test_probe_one_with_an_exception_without_a_message():
    class Bare(Faithful):
        def forward(self, weights, ids):
            raise KeyError

    assert probe_one(Bare(), probe_tables(5), 5, "int64") == ({"raise"}, "KeyError: ")


def test_probe_one_leaves_the_snippet_of_each_call_before_it_runs(tmp_path, monkeypatch):
    path = tmp_path / "last_call.py"
    monkeypatch.setenv(checks.LAST_CALL_ENV, str(path))

    class Reads(Faithful):
        id = "kp-reads"

        def __init__(self):
            self.noted = []

        def forward(self, weights, ids):
            self.noted.append(path.read_text())
            return np.take(weights, ids % weights.shape[0], axis=0)

    adapter = Reads()
    tables = probe_tables(2)
    probe_one(adapter, tables, -1, "int64")
    assert adapter.noted == [_head("kp-reads", "kp-reads") + f"W = {w}\nids = np.array([-1], dtype='int64')\n"
                             "print(adapter.lookup(W, ids))" for w in (
                                 "np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).reshape((2, 3)).astype(np_dtype('float32'))",
                                 "np.array([997.0, 994.0, 991.0, 988.0, 985.0, 982.0]).reshape((2, 3))"
                                 ".astype(np_dtype('float32'))")]


# --- _observe through run_check ---------------------------------------------------------------
ROWS_A = ["[[1.0, 2.0, 3.0]]", "[[4.0, 5.0, 6.0]]", "[[7.0, 8.0, 9.0]]", "[[10.0, 11.0, 12.0]]",
          "[[13.0, 14.0, 15.0]]"]
ROWS_B = ["[[997.0, 994.0, 991.0]]", "[[988.0, 985.0, 982.0]]", "[[979.0, 976.0, 973.0]]",
          "[[970.0, 967.0, 964.0]]", "[[961.0, 958.0, 955.0]]"]
TABLE_A = ("np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0])"
           ".reshape((5, 3)).astype(np_dtype('float32'))")


def _rows(row):
    return f"rows {ROWS_A[row]} / {ROWS_B[row]}"


def test_negative_ids_that_wrap_as_declared_pass_and_are_recorded():
    adapter = Probe("wrap", _declared(index_dtypes=("int32", "int64"), negative_index="wrap"))
    result = run_check(adapter, "negative_index")
    assert (result.status, result.detail) == ("passed", "")
    assert result.observed == {
        "negative_index": "wrap",
        "negative_index_detail": f"id -1: wrap ({_rows(4)}); id -2: wrap ({_rows(3)}); id -5: clamp/wrap "
                                 f"(rows {ROWS_A[0]} / {ROWS_B[0]})"}
    # The control call first (valid ids 1 and 3 of table A), then each bad id on both tables.
    assert adapter.calls[0] == (1.0, "int32", [1, 3])
    assert adapter.calls[1:] == [(t, "int32", [b]) for b in (-1, -2, -5) for t in (1.0, 997.0)]


def test_out_of_range_ids_that_clamp_where_raise_is_declared_fail_on_the_first_such_id():
    result = run_check(Probe("clamp"), "out_of_range")
    assert result.status == "failed"
    detail = (f"id 5: clamp ({_rows(4)}); id 6: clamp ({_rows(4)}); id 2147483647: clamp ({_rows(4)})")
    assert result.observed == {"out_of_range": "clamp", "out_of_range_detail": detail}
    assert result.detail == (
        f"harness.checks.ConformanceFailure: kp-probe: out of range: declared 'raise', observed 'clamp' ({detail})"
        f"\n--- reproduce ---\n" + _head("kp-probe", "kp-probe") + f"W = {TABLE_A}\n"
        "ids = np.array([5], dtype='int32')\nprint(adapter.lookup(W, ids))")


def test_the_worst_id_is_the_first_that_does_not_do_what_is_declared():
    adapter = Probe("first-wrap-then-clamp", _declared(index_dtypes=("int64",), negative_index="wrap"))
    result = run_check(adapter, "negative_index")
    assert result.status == "failed"
    assert result.observed["negative_index"] == "undefined"  # no outcome common to all three
    assert result.detail.startswith("harness.checks.ConformanceFailure: kp-probe: negative index: declared 'wrap', "
                                    "observed 'undefined' (id -1: wrap (")
    assert result.detail.endswith("ids = np.array([-2], dtype='int64')\nprint(adapter.lookup(W, ids))")


@pytest.mark.parametrize("mode, kind, outcome", [("raise", "out_of_range", "raise"), ("zeros", "out_of_range", "zeros"),
                                                 ("nan", "negative_index", "nan"),
                                                 ("same-garbage", "out_of_range", "undefined")])
def test_each_outcome_is_observed_and_a_matching_declaration_passes(mode, kind, outcome):
    declared = _declared(index_dtypes=("int64",), **{kind: outcome})
    result = run_check(Probe(mode, declared), kind)
    assert (result.status, result.observed[kind]) == ("passed", outcome), result.detail
    other = "wrap" if outcome != "wrap" else "clamp"
    failed = run_check(Probe(mode, _declared(index_dtypes=("int64",), **{kind: other})), kind)
    assert failed.status == "failed" and f"declared {other!r}, observed {outcome!r}" in failed.detail


def test_whatever_happens_passes_where_undefined_is_declared():
    result = run_check(Probe("clamp", _declared(index_dtypes=("int64",), negative_index="undefined")),
                       "negative_index")
    assert (result.status, result.observed["negative_index"]) == ("passed", "clamp")


def test_the_detail_is_cut_at_3000_characters(monkeypatch):
    monkeypatch.setattr(checks, "probe_isolated",
                        lambda adapter, vocab, bad_ids, dtype: {b: ({"raise"}, "y" * 2000) for b in bad_ids})
    adapter = Probe("raise", _declared(index_dtypes=("int64",)))
    adapter.isolate_probes = True
    detail = run_check(adapter, "out_of_range").observed["out_of_range_detail"]
    assert detail == ("id 5: raise (" + "y" * 2000 + "); id 6: raise (" + "y" * 2000)[:3000]


def test_a_long_error_is_cut_to_its_first_160_characters():
    class Long(Faithful):
        id = "kp-long"
        declared = _declared(index_dtypes=("int64",), out_of_range="undefined")

        def forward(self, weights, ids):
            if np.asarray(ids).max() >= weights.shape[0]:
                raise ValueError("x" * 5000)
            return np.take(weights, ids, axis=0)

    detail = run_check(Long(), "out_of_range").observed["out_of_range_detail"]
    assert detail.startswith("id 5: raise (ValueError: " + "x" * 160 + "); id 6: raise")


def test_unsigned_ids_cannot_be_negative():
    result = run_check(Probe("wrap", _declared(index_dtypes=("uint32",))), "negative_index")
    assert (result.status, result.observed) == ("passed", {"negative_index": "n/a"})


def test_the_control_call_raising_is_reported_as_such():
    class Broken(Faithful):
        id = "kp-broken"

        def forward(self, weights, ids):
            raise RuntimeError("no kernel")

    result = run_check(Broken(), "negative_index")
    assert result.status == "failed"
    assert result.detail == (
        "harness.checks.ConformanceFailure: kp-broken: the control call with valid ids raised RuntimeError: no kernel; "
        "what a bad id does cannot be told\n--- reproduce ---\n" + _head("kp-broken", "kp-broken")
        + f"W = {TABLE_A}\nids = np.array([1, 3], dtype='int32')\nprint(adapter.lookup(W, ids))")


@pytest.mark.parametrize("change", ["rows", "shape"])
def test_the_control_call_returning_other_rows_is_reported_as_such(change):
    class Off(Faithful):
        id = "kp-off"
        declared = _declared(index_dtypes=("int64",))

        def forward(self, weights, ids):
            got = np.take(weights, ids, axis=0)
            return got[::-1] if change == "rows" else got[None]

    result = run_check(Off(), "out_of_range")
    assert result.status == "failed"
    assert result.detail == (
        "harness.checks.ConformanceFailure: kp-off: the control call with valid ids returned rows other than W[ids]; "
        "what a bad id does cannot be told\n--- reproduce ---\n" + _head("kp-off", "kp-off")
        + f"W = {TABLE_A}\nids = np.array([1, 3], dtype='int64')\nprint(adapter.lookup(W, ids))")


# --- isolation --------------------------------------------------------------------------------
def test_isolated_probes_are_asked_of_the_child_and_recorded(monkeypatch):
    asked = []

    def fake(adapter, vocab, bad_ids, index_dtype):
        asked.append((adapter.id, vocab, bad_ids, index_dtype))
        return {b: ({"raise"}, "IndexError: out") for b in bad_ids}

    monkeypatch.setattr(checks, "probe_isolated", fake)
    adapter = Probe("wrap", _declared(index_dtypes=("int64",)))
    adapter.isolate_probes = True
    result = run_check(adapter, "out_of_range")
    assert result.status == "passed", result.detail
    assert asked == [("kp-probe", 5, [5, 6, 2**31 - 1], "int64")]
    assert result.observed == {"out_of_range": "raise", "out_of_range_isolated": True,
                               "out_of_range_detail": "id 5: raise (IndexError: out); id 6: raise (IndexError: out); "
                                                      "id 2147483647: raise (IndexError: out)"}
    assert adapter.calls == [(1.0, "int64", [1, 3])]  # only the control call ran here


def test_isolation_that_observed_nothing_is_a_failure_no_declaration_excuses(monkeypatch):
    def fake(adapter, vocab, bad_ids, index_dtype):
        raise IsolationFailed("the child died")

    monkeypatch.setattr(checks, "probe_isolated", fake)
    adapter = Probe("wrap", _declared(index_dtypes=("int64",), deviations={"out_of_range": "it crashes"}))
    adapter.isolate_probes = True
    with pytest.raises(WrongEvenIfDeclared) as info:
        checks._probe_bad_ids(adapter, 5, [5, 6], "int64")
    assert str(info.value) == ("kp-probe: the child died\n--- reproduce ---\n" + _head("kp-probe", "kp-probe")
                               + f"W = {TABLE_A}\nids = np.array([5], dtype='int64')\nprint(adapter.lookup(W, ids))")
    result = run_check(adapter, "out_of_range")
    assert result.status == "failed" and "but this is not that deviation" in result.detail


# --- _index_tables / _index_dtypes -----------------------------------------------------------
def test_index_tables_reach_the_largest_id_of_each_dtype():
    vocab, (grid, line) = _index_tables("uint8")
    assert vocab == 263
    assert grid.dtype == line.dtype == np.uint8
    assert grid.tolist() == [[255, 0, 1], [131, 255, 2]] and grid.flags.f_contiguous and not grid.flags.c_contiguous
    assert line.tolist() == [1, 255, 0, 87] and line.strides == (2,)
    vocab, (grid, line) = _index_tables("int64")
    assert vocab == 70_007
    assert grid.tolist() == [[69_999, 0, 1], [35_003, 69_999, 2]] and line.tolist() == [1, 69_999, 0, 23_335]
    vocab, (grid, line) = _index_tables("float32")
    assert vocab == 12 and grid.dtype == np.float32
    assert grid.tolist() == [[4, 0, 1], [6, 4, 2]] and line.tolist() == [1, 4, 0, 4]


class Indexes(Faithful):
    """Accepts ``accepts`` (int64-like reads of each), rejects the rest with a two-line error."""

    id = "kp-indexes"

    def __init__(self, accepts, declared, wrong=()):
        self.accepts, self.declared, self.wrong = accepts, _declared(index_dtypes=declared), wrong

    def forward(self, weights, ids):
        ids = np.asarray(ids)
        if ids.dtype.name not in self.accepts:
            raise TypeError(f"ids of dtype {ids.dtype.name} are not supported\nuse int32")
        if ids.dtype.name in self.wrong:
            return np.take(weights, ids.astype(np.int8).astype(np.int64) % weights.shape[0], axis=0)
        return np.take(weights, ids.astype(np.int64), axis=0)


def test_index_dtypes_as_declared_pass_and_are_recorded():
    result = run_check(Indexes(("int32", "uint8"), ("uint8", "int32")), "index_dtypes")
    assert (result.status, result.detail) == ("passed", "")
    assert result.observed == {"index_dtypes": ["int32", "uint8"]}


def test_a_declared_index_dtype_that_is_rejected_names_the_error():
    result = run_check(Indexes(("int32",), ("int32", "uint16", "int8")), "index_dtypes")
    assert result.status == "failed"
    assert result.observed == {"index_dtypes": ["int32"]}
    assert result.detail == (
        "harness.checks.ConformanceFailure: kp-indexes: index dtypes: declared but rejected: "
        "int8 (TypeError: ids of dtype int8 are not supported); uint16 (TypeError: ids of dtype uint16 are not "
        "supported)\n--- reproduce ---\n" + _head("kp-indexes", "kp-indexes")
        + "W = (np.arange(405, dtype=np.float64).reshape(135, 3) + 1).astype(np_dtype('float32'))\n"
        "ids = np.asfortranarray(np.array([[127, 0, 1], [67, 127, 2]], dtype='int8'))\nprint(adapter.lookup(W, ids))")


def test_an_undeclared_index_dtype_accepted_silently_and_wrong_rows():
    result = run_check(Indexes(("int32", "int64", "uint8"), ("int32",)), "index_dtypes")
    assert result.status == "failed"
    assert "index dtypes: not declared, yet accepted without an error: ['int64', 'uint8']\n" in result.detail
    assert "W = (np.arange(210021, dtype=np.float64).reshape(70007, 3) + 1)" in result.detail
    assert "ids = np.asfortranarray(np.array([[69999, 0, 1], [35003, 69999, 2]], dtype='int64'))" in result.detail
    wrong = run_check(Indexes(("int32", "uint8", "uint16"), ("int32", "uint8", "uint16"), wrong=("uint8", "uint16")),
                      "index_dtypes")
    assert wrong.status == "failed"
    assert wrong.detail.startswith("harness.checks.ConformanceFailure: kp-indexes: index dtypes: accepted "
                                   "['uint16', 'uint8'] but returned rows other than W[ids]\n--- reproduce ---\n")
    assert wrong.detail.endswith(
        "W = (np.arange(789, dtype=np.float64).reshape(263, 3) + 1).astype(np_dtype('float32'))\n"
        "ids = np.asfortranarray(np.array([[255, 0, 1], [131, 255, 2]], dtype='uint8'))\nprint(adapter.lookup(W, ids))")
    both = run_check(Indexes(("int32", "uint8"), ("int32", "int16"), wrong=("uint8",)), "index_dtypes")
    assert (" | declared but rejected: int16 (TypeError: ids of dtype int16 are not supported) | not declared, yet "
            "accepted without an error: ['uint8']\n") in both.detail
    assert "dtype='uint8'))\nprint(adapter.lookup(W, ids))" in both.detail


def test_a_wrong_shape_for_an_accepted_index_dtype_is_wrong_rows():
    class Flat(Indexes):
        def forward(self, weights, ids):
            return super().forward(weights, ids).reshape(-1, weights.shape[1])

    result = run_check(Flat(("int32",), ("int32",)), "index_dtypes")
    assert "accepted ['int32'] but returned rows other than W[ids]" in result.detail
    assert "ids = np.asfortranarray(np.array([[69999, 0, 1], [35003, 69999, 2]], dtype='int32'))" in result.detail


def test_an_error_without_a_message_and_the_snippet_of_each_dtype_left_before_its_calls(tmp_path, monkeypatch):
    path = tmp_path / "last_call.py"
    monkeypatch.setenv(checks.LAST_CALL_ENV, str(path))

    class Quiet(Indexes):
        def forward(self, weights, ids):
            self.noted.setdefault(np.asarray(ids).dtype.name, path.read_text())
            if np.asarray(ids).dtype.name != "int32":
                raise KeyError
            return super().forward(weights, ids)

    adapter = Quiet(("int32",), ("int32", "int8"))
    adapter.noted = {}
    result = run_check(adapter, "index_dtypes")
    assert "declared but rejected: int8 (KeyError: )\n" in result.detail
    assert adapter.noted["int8"] == (
        _head("kp-indexes", "kp-indexes")
        + "W = (np.arange(405, dtype=np.float64).reshape(135, 3) + 1).astype(np_dtype('float32'))\n"
        "id_arrays = [np.asfortranarray(np.array([[127, 0, 1], [67, 127, 2]], dtype='int8')), "
        "np.repeat(np.array([1, 127, 0, 45], dtype='int8'), 2, axis=-1)[..., ::2]]\n"
        "print([adapter.lookup(W, ids) for ids in id_arrays])")
    assert len(adapter.noted) == len(checks.CANDIDATE_INDEX_DTYPES)


def test_index_dtypes_runs_on_a_fresh_context():
    ctx = Context()
    checks._index_dtypes(Indexes(("int64",), ("int64",)), ctx)
    assert ctx.observed == {"index_dtypes": ["int64"]}
