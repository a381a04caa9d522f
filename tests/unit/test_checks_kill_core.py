"""Focused, in-process tests of how harness/checks.py classifies outcomes, describes failures,
calls adapters and validates declarations (written to pin behaviour that mutation testing
showed unchecked)."""

import traceback

import numpy as np
import pytest
from broken_adapters import Faithful, _declared

from harness.adapter import Deviates
from harness.checks import (
    CHECKS,
    CHECKS_BY_NAME,
    AdapterCrash,
    Check,
    CheckResult,
    ConformanceFailure,
    Context,
    WrongEvenIfDeclared,
    _describe_failure,
    check_adapter,
    run_check,
    skip_reason,
    validate_declaration,
)
from harness.errors import HarnessError

NAME = "scalar_id"  # a real check name, so declarations naming it are valid


def _check(run, applies=lambda adapter: None, name=NAME):
    return Check(name, "a hand-made check", run, applies)


class Deviating(Faithful):
    id = "deviating"
    declared = _declared(deviations={NAME: "drops the axis"})


def _records(seen, *, examples=3, raise_=None):
    def run(adapter, ctx):
        seen.append((adapter, ctx))
        ctx.examples += examples
        ctx.observed["what"] = "seen"
        if raise_ is not None:
            raise raise_

    return run


# --- run_check --------------------------------------------------------------------------------
def test_a_passing_check_gets_the_adapter_a_fresh_context_and_reports_what_it_recorded():
    seen, adapter = [], Faithful()
    result = run_check(adapter, _check(_records(seen)))
    assert len(seen) == 1 and seen[0][0] is adapter and isinstance(seen[0][1], Context)
    assert (result.check, result.status, result.detail, result.examples, result.observed) == \
        (NAME, "passed", "", 3, {"what": "seen"})
    assert isinstance(result.duration_s, float) and 0 <= result.duration_s < 60


def test_a_check_named_by_string_is_looked_up_and_run():
    result = run_check(Faithful(), "scalar_id")
    assert (result.check, result.status, result.detail) == ("scalar_id", "passed", "")
    assert result.examples == 0 and result.observed == {}


def test_a_check_object_outside_the_registry_runs_as_given():
    result = run_check(Faithful(), _check(_records([]), name="hand_made"))
    assert (result.check, result.status) == ("hand_made", "passed")


def test_a_failure_without_a_declared_deviation_is_failed_with_the_exception_text():
    result = run_check(Faithful(), _check(_records([], raise_=ConformanceFailure("rows differ"))))
    assert result == CheckResult(NAME, "failed", "harness.checks.ConformanceFailure: rows differ", 3,
                                 result.duration_s, {"what": "seen"})
    assert isinstance(result.duration_s, float) and 0 <= result.duration_s < 60


def test_a_declared_deviation_that_occurs_is_xfailed_with_the_observation():
    result = run_check(Deviating(), _check(_records([], raise_=ConformanceFailure("rows differ"))))
    assert result == CheckResult(NAME, "xfailed", "declared deviation: drops the axis\nobserved: "
                                 "harness.checks.ConformanceFailure: rows differ", 3, result.duration_s,
                                 {"what": "seen"})
    assert isinstance(result.duration_s, float) and 0 <= result.duration_s < 60


def test_any_exception_without_an_excusable_flag_counts_as_the_declared_deviation():
    result = run_check(Deviating(), _check(_records([], raise_=ValueError("kernel overflow"))))
    assert result.status == "xfailed"
    assert result.detail.startswith("declared deviation: drops the axis\nobserved: ValueError: kernel overflow\n")


def test_a_wrong_result_no_deviation_explains_fails_even_where_one_is_declared():
    result = run_check(Deviating(), _check(_records([], raise_=WrongEvenIfDeclared("sum is 7"))))
    assert result == CheckResult(NAME, "failed", "declared deviation: drops the axis; but this is not that "
                                 "deviation:\nharness.checks.WrongEvenIfDeclared: sum is 7", 3,
                                 result.duration_s, {"what": "seen"})
    plain = run_check(Faithful(), _check(_records([], raise_=WrongEvenIfDeclared("sum is 7"))))
    assert plain.detail == "harness.checks.WrongEvenIfDeclared: sum is 7"


def test_a_declared_deviation_that_does_not_occur_fails_keeping_what_was_recorded():
    result = run_check(Deviating(), _check(_records([])))
    assert result == CheckResult(NAME, "failed", "declared deviation did not occur: drops the axis", 3,
                                 result.duration_s, {"what": "seen"})
    assert isinstance(result.duration_s, float) and 0 <= result.duration_s < 60


def test_a_declared_not_applicable_check_never_runs():
    class Skips(Faithful):
        declared = _declared(not_applicable={NAME: "no scalars here"})

    seen = []
    result = run_check(Skips(), _check(_records(seen), applies=lambda a: "structural"))
    assert result == CheckResult(NAME, "not_applicable", "no scalars here")
    assert seen == []
    other = run_check(Skips(), _check(_records(seen), name="empty_batch"))
    assert other.status == "passed" and len(seen) == 1  # not_applicable names one check only


def test_a_structural_skip_asks_the_check_about_this_adapter():
    seen, adapter = [], Faithful()
    result = run_check(adapter, _check(_records(seen), applies=lambda a: f"{a.id} has no such thing"))
    assert result == CheckResult(NAME, "not_applicable", "faithful has no such thing") and seen == []
    assert skip_reason(adapter, _check(_records(seen), applies=lambda a: f"for {a.id}")) == "for faithful"
    assert skip_reason(adapter, _check(_records(seen))) is None


# --- _describe_failure ------------------------------------------------------------------------
def _nested(depth, exc):
    if depth == 0:
        raise exc
    _nested(depth - 1, exc)


def _raised(exc, depth=5):
    try:
        _nested(depth, exc)
    except BaseException as caught:  # noqa: BLE001
        return caught


def _tail(exc):
    return "".join(traceback.format_tb(exc.__traceback__)[-3:]).rstrip()


def test_an_assertion_is_described_by_its_text_and_notes_only():
    exc = _raised(ConformanceFailure("rows differ\n--- reproduce ---\nprint(1)"))
    exc.add_note("Falsifying example: case=...")
    assert _describe_failure(exc) == ("harness.checks.ConformanceFailure: rows differ\n--- reproduce ---\n"
                                      "print(1)\nFalsifying example: case=...")


def test_a_crash_is_described_with_the_last_three_frames_of_its_traceback():
    exc = _raised(ValueError("boom"))
    frames = traceback.format_tb(exc.__traceback__)
    assert len(frames) > 4
    text = _describe_failure(exc)
    assert text == "ValueError: boom\n" + "".join(frames[-3:]).rstrip()
    assert text.split("\n", 1)[1].startswith("  File ")


def test_an_adapter_crash_is_described_with_the_frames_of_the_adapter_exception():
    inner = _raised(KeyError("k"), depth=4)
    try:
        raise AdapterCrash("faithful: adapter.lookup(W raised KeyError: 'k'") from inner
    except AdapterCrash as crash:
        outer = crash
    assert _describe_failure(outer) == ("harness.checks.AdapterCrash: faithful: adapter.lookup(W raised "
                                        "KeyError: 'k'\n" + _tail(inner))
    bare = _raised(AdapterCrash("no cause"), depth=4)
    assert _describe_failure(bare) == "harness.checks.AdapterCrash: no cause\n" + _tail(bare)


def test_a_chained_crash_that_is_not_an_adapter_crash_shows_its_own_frames():
    inner = _raised(KeyError("k"), depth=4)
    try:
        raise RuntimeError("outer") from inner
    except RuntimeError as exc:
        outer = exc
    assert _describe_failure(outer) == "RuntimeError: outer\n" + _tail(outer)


# --- validate_declaration / check_adapter -----------------------------------------------------
def _with(**changes):
    class Adapter(Faithful):
        id = "declares"
        declared = _declared(**changes)

    return Adapter()


def test_a_valid_declaration_passes_for_every_gradient_kind():
    for gradient in ("dense", "sparse", "none"):
        validate_declaration(_with(gradient=gradient, deviations={NAME: "x"}, not_applicable={"empty_batch": "y"},
                                   platform_deviations=(Deviates(("subnormals_preserved",), "z",
                                                                 dtypes=("bfloat16",)),)))


@pytest.mark.parametrize("field, changes, unknown", [
    ("deviations", {"deviations": {"scalar_ids": "x", NAME: "y", "a_typo": "z"}}, ["a_typo", "scalar_ids"]),
    ("not_applicable", {"not_applicable": {"emptybatch": "x"}}, ["emptybatch"]),
    ("platform_deviations", {"platform_deviations": (Deviates(("subnormals_preserved",), "z"),)},
     ["subnormals_preserved"]),
])
def test_a_declaration_naming_an_unknown_check_is_refused_with_its_names(field, changes, unknown):
    with pytest.raises(HarnessError) as info:
        validate_declaration(_with(**changes))
    assert str(info.value) == (f"declares: declared.{field} names unknown check(s) {unknown}; "
                               "'python -m harness checks' lists them")


def test_an_unknown_gradient_kind_is_refused():
    with pytest.raises(HarnessError) as info:
        validate_declaration(_with(gradient="Dense"))
    assert str(info.value) == ("declares: declared.gradient is 'Dense'; use 'dense', 'sparse' or 'none' "
                               "(forward-only)")


def test_check_adapter_runs_every_check_in_order_when_none_are_named():
    adapter = _with(not_applicable={c.name: f"skip {c.name}" for c in CHECKS})
    results = check_adapter(adapter)
    assert [(r.check, r.status, r.detail) for r in results] == \
        [(c.name, "not_applicable", f"skip {c.name}") for c in CHECKS]


def test_check_adapter_runs_the_named_checks_in_the_order_given():
    results = check_adapter(Faithful(), ["empty_batch", "scalar_id"])
    assert [(r.check, r.status) for r in results] == [("empty_batch", "passed"), ("scalar_id", "passed")]


def test_check_adapter_validates_the_declaration_and_the_names_first():
    with pytest.raises(HarnessError, match=r"declared.deviations names unknown check\(s\) \['nope'\]"):
        check_adapter(_with(deviations={"nope": "x"}), ["scalar_id"])
    with pytest.raises(HarnessError) as info:
        check_adapter(Faithful(), ["scalar_id", "zzz", "aaa"])
    assert str(info.value) == "unknown check(s) ['aaa', 'zzz']; 'python -m harness checks' lists them"
    assert CHECKS_BY_NAME["scalar_id"] in CHECKS


# --- calling the adapter ----------------------------------------------------------------------
from harness import checks as C  # noqa: E402
from harness.checks import LAST_CALL_ENV  # noqa: E402
from harness.repro import snippet  # noqa: E402

W = np.array([[1.0, 2.0], [3.0, -0.0], [5.0, 6.0]], dtype=np.float32)
IDS = np.array([2, 0, 2], dtype=np.int64)
UP = np.array([[0.5, 1.0], [2.0, 4.0], [8.0, 16.0]], dtype=np.float32)


def test_fail_raises_the_given_class_with_the_message_and_a_full_repro():
    adapter = Faithful()
    with pytest.raises(WrongEvenIfDeclared) as info:
        C._fail(adapter, "rows differ", "adapter.lookup(W, ids)", expected="oracle.forward(W, ids % len(W))",
                cls=WrongEvenIfDeclared, W=W, ids=IDS)
    want = snippet(adapter, "adapter.lookup(W, ids)", "oracle.forward(W, ids % len(W))", W=W, ids=IDS)
    assert str(info.value) == f"faithful: rows differ\n--- reproduce ---\n{want}"
    assert "expected = oracle.forward(W, ids % len(W))" in want and "print(adapter.lookup(W, ids))" in want
    with pytest.raises(ConformanceFailure) as plain:
        C._fail(adapter, "m", "adapter.lookup(W, ids)", ids=IDS)
    assert type(plain.value) is ConformanceFailure
    assert str(plain.value) == "faithful: m\n--- reproduce ---\n" + snippet(adapter, "adapter.lookup(W, ids)", ids=IDS)


def test_lookup_and_grad_return_the_adapter_results_and_leave_inputs_alone(tmp_path, monkeypatch):
    monkeypatch.delenv(LAST_CALL_ENV, raising=False)
    adapter = Faithful()
    np.testing.assert_array_equal(C._lookup(adapter, W, IDS), W[IDS])
    grad = C._grad(adapter, W, IDS, UP)
    np.testing.assert_array_equal(grad, np.array([[2.0, 4.0], [0, 0], [8.5, 17.0]], np.float32))
    assert grad.dtype == np.float32


def test_each_call_is_noted_for_the_supervisor_before_it_runs(tmp_path, monkeypatch):
    note = tmp_path / "last_call.py"
    monkeypatch.setenv(LAST_CALL_ENV, str(note))

    class Unicode(Faithful):
        id = "fäithful-ü"

    adapter = Unicode()
    C._lookup(adapter, W, IDS, {"W": "np.ones((3, 2), np.float32)"})
    assert note.read_text(encoding="utf-8") == snippet(adapter, "adapter.lookup(W, ids)",
                                                       W="np.ones((3, 2), np.float32)", ids=IDS)
    C._grad(adapter, W, IDS, UP)
    assert note.read_text(encoding="utf-8") == snippet(adapter, "adapter.weight_grad(W, ids, up)", W=W, ids=IDS, up=UP)


class Raises(Faithful):
    id = "raises"

    def __init__(self, exc):
        self.exc = exc

    def forward(self, weights, ids):
        raise self.exc

    def gradient(self, weights, ids, upstream):
        raise self.exc


@pytest.mark.parametrize("message, first", [
    ("  bad index\n\nsecond line  \nthird", "bad index second line"),  # a wrapper's cause is on line 2
    ("", ""),
    ("x" * 400, "x" * 300),
])
def test_a_crash_comes_back_as_adapter_crash_with_its_headline_and_a_repro(message, first):
    exc = ValueError(message)
    adapter = Raises(exc)
    with pytest.raises(AdapterCrash) as info:
        C._lookup(adapter, W, IDS)
    assert str(info.value) == (f"raises: adapter.lookup(W raised ValueError: {first}\n--- reproduce ---\n"
                               + snippet(adapter, "adapter.lookup(W, ids)", W=W, ids=IDS))
    assert info.value.__cause__ is exc
    with pytest.raises(AdapterCrash) as grad:
        C._grad(adapter, W, IDS, UP, {"up": "np.ones((3, 2))"})
    assert str(grad.value) == (f"raises: adapter.weight_grad(W raised ValueError: {first}\n--- reproduce ---\n"
                               + snippet(adapter, "adapter.weight_grad(W, ids, up)", up="np.ones((3, 2))",
                                         W=W, ids=IDS))


def test_a_conformance_failure_raised_inside_the_call_passes_through_unchanged():
    exc = ConformanceFailure("as it was")
    with pytest.raises(ConformanceFailure) as info:
        C._call(Faithful(), "adapter.lookup(W, ids)", lambda: (_ for _ in ()).throw(exc), {"W": W})
    assert info.value is exc


class ChangesInput(Faithful):
    id = "changes-input"

    def __init__(self, which):
        self.which = which

    def weight_grad(self, weights, ids, upstream):
        arrays = {"W": weights, "ids": ids, "up": upstream}
        arrays[self.which][0] = -arrays[self.which][0] - 1
        return super().weight_grad(weights, ids, upstream)


@pytest.mark.parametrize("which", ["W", "ids", "up"])
def test_an_input_changed_in_place_fails_with_the_pristine_inputs_in_the_repro(which):
    weights, ids, up = W.copy(), IDS.copy(), UP.copy()
    adapter = ChangesInput(which)
    with pytest.raises(ConformanceFailure) as info:
        C._grad(adapter, weights, ids, up)
    assert str(info.value) == (f"changes-input: the adapter changed its input {which} in place (the caller's "
                               f"array must stay as it was)\n--- reproduce ---\n"
                               + snippet(adapter, "adapter.weight_grad(W, ids, up)", W=W, ids=IDS, up=UP))


def test_shown_puts_recipes_first_then_every_array_without_one():
    a, b = np.zeros(2), np.ones(2)
    merged = C._shown({"W": a, "ids": b}, {"ids": "recipe", "rng": "np.random.default_rng(7)"})
    assert list(merged) == ["ids", "rng", "W"]
    assert merged["ids"] == "recipe" and merged["W"] is a
    plain = C._shown({"W": a, "ids": b}, None)
    assert list(plain) == ["W", "ids"] and plain["W"] is a and plain["ids"] is b


def test_same_bits_compares_shape_dtype_and_exact_bits():
    zeros32 = np.zeros(3, np.float32)
    assert C._same_bits(zeros32, np.zeros(3, np.float32))
    assert not C._same_bits(zeros32, np.zeros(3, np.int32))  # same bits, other dtype
    assert not C._same_bits(zeros32, np.zeros((3, 1), np.float32))
    assert not C._same_bits(zeros32, np.array([0.0, -0.0, 0.0], np.float32))  # -0.0 is another value
    nan = np.array([np.nan, 1.0])
    assert C._same_bits(nan, nan.copy())  # NaN is the same NaN
    fortran = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    assert C._same_bits(fortran, np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(C._bits(np.array([1.0], np.float32)), np.array([0x3F800000], np.uint32))


def test_gradient_and_dtype_applicability():
    assert C._has_gradient(Faithful()) and C._needs_gradient(Faithful()) is None
    forward_only = _with(gradient="none")
    assert not C._has_gradient(forward_only)
    assert C._needs_gradient(forward_only) == "declares declares no gradient (forward-only)"
    assert C._needs_dtype("float16", Faithful()) is None
    assert C._needs_dtype("float16", _with(weight_dtypes=("float32",))) == "float16 weights not declared by declares"
    no_f16 = _with(gradient="none", weight_dtypes=("float32",))
    needs = (C._needs_gradient, lambda a: C._needs_dtype("float16", a))
    assert C._both(needs, no_f16) == "declares declares no gradient (forward-only)"
    assert C._both(needs[::-1], no_f16) == "float16 weights not declared by declares"
    assert C._both(needs, _with(weight_dtypes=("float32",))) == "float16 weights not declared by declares"
    assert C._both(needs, Faithful()) is None


@pytest.mark.parametrize("precision, dtype, bound_in", [
    ("float32", "float32", "float32"), ("float32", "float16", "float16"), ("tf32", "float32", "tf32"),
    ("tf32", "float16", "float16"), ("bfloat16", "float16", "bfloat16"), ("tf32", "bfloat16", "bfloat16"),
])
def test_a_gradient_is_bounded_in_the_coarser_of_weight_dtype_and_matmul_precision(precision, dtype, bound_in):
    assert C._accumulation_format(precision, dtype) == bound_in


@pytest.mark.parametrize("index_dtypes, preferred", [
    (("int8", "int64", "uint8", "int32"), ("int64", "int32")),
    (("int32",), ("int32",)),
    (("float32", "uint8", "int16"), ("uint8",)),
    (("float32",), ("int64",)),
])
def test_ids_are_made_in_int32_int64_when_declared_else_the_first_other_declared_dtype(index_dtypes, preferred):
    assert C._preferred_ids_dtypes(_with(index_dtypes=index_dtypes)) == preferred


# --- _expect_rows / _forward_and_gradient -----------------------------------------------------
LOOKUP, FORWARD = "adapter.lookup(W, ids)", "oracle.forward(W, ids % len(W))"


def _failure(adapter, message, call, expected, **arrays):
    return f"{adapter.id}: {message}\n--- reproduce ---\n{snippet(adapter, call, expected, **arrays)}"


def _rows_failure(adapter, got, want, dtype=None):
    shown = {"W": W, "ids": IDS}
    with pytest.raises(ConformanceFailure) as info:
        C._expect_rows(adapter, got, want, shown, dtype)
    return str(info.value)


def test_rows_of_the_wrong_shape_are_reported_with_both_shapes():
    adapter, want = Faithful(), W[IDS]
    assert _rows_failure(adapter, want[:2], want) == _failure(
        adapter, "output shape (2, 2), expected ids.shape + (dim,) = (3, 2)", LOOKUP, FORWARD, W=W, ids=IDS)


def test_rows_of_the_wrong_dtype_are_reported_with_both_dtypes():
    adapter, want = Faithful(), W[IDS]
    assert _rows_failure(adapter, want.astype(np.float16), want) == _failure(
        adapter, "output dtype float16, expected the weight dtype float32", LOOKUP, FORWARD, W=W, ids=IDS)


def test_rows_are_bit_exact_by_default_and_the_first_difference_is_shown():
    adapter, want = Faithful(), W[IDS]
    C._expect_rows(adapter, want.copy(), want, {"W": W, "ids": IDS})  # equal: no failure
    got = want.copy()
    got[1, 0], got[2, 1] = 1.5, 7.0
    assert _rows_failure(adapter, got, want) == _failure(
        adapter, f"2 output values differ from W[ids] (bit-exact); first at (1, 0): got {got[1, 0]!r}, "
        f"expected {want[1, 0]!r}", LOOKUP, FORWARD, W=W, ids=IDS)
    zero_want = np.array([[-0.0]], np.float32)
    assert "1 output values differ from W[ids] (bit-exact); first at (0, 0)" in \
        _rows_failure(adapter, np.zeros((1, 1), np.float32), zero_want)


class TF32(Faithful):
    id = "tf32-matmul"
    declared = _declared(matmul_precision="tf32")


def test_rows_from_a_coarser_matmul_are_allowed_its_rounding_and_no_more():
    adapter = TF32()
    want = np.array([[1024.0, 2048.0], [-4096.0, 3.0]], np.float32)
    tol = 2.0 ** -11 * np.abs(want.astype(np.float64))
    C._expect_rows(adapter, (want + tol).astype(np.float32), want, {"W": W, "ids": IDS})  # |err| == tol passes
    C._expect_rows(adapter, (want - tol).astype(np.float32), want, {"W": W, "ids": IDS})
    got = want.copy()
    got[1, 0] = -4096.0 - 4.0
    got[1, 1] = 3.25
    assert _rows_failure(adapter, got, want) == _failure(
        adapter, f"2 output values differ from W[ids] (|err| <= u(tf32) * |W|); first at (1, 0): got "
        f"{got[1, 0]!r}, expected {want[1, 0]!r}", LOOKUP, FORWARD, W=W, ids=IDS)
    # The bound is set by the dtype the check names: a float16 case gets no tf32 slack (same u).
    within = (want + tol).astype(np.float32)
    assert "differ from W[ids] (bit-exact)" in _rows_failure(adapter, within, want, "float16")
    C._expect_rows(adapter, within, want, {"W": W, "ids": IDS}, "float32")
    # Without a named dtype the table's own dtype sets it: float16 is as fine as tf32, so bit-exact.
    want16 = want.astype(np.float16)
    assert "differ from W[ids] (bit-exact)" in _rows_failure(adapter, want16 * np.float16(2), want16)


def test_forward_and_gradient_checks_both_against_the_oracle_with_wrapped_ids():
    seen = []

    class Records(Faithful):
        def weight_grad(self, weights, ids, upstream):
            seen.append((weights, ids, upstream))
            return super().weight_grad(weights, ids, upstream)

    ids = np.array([-1, 0, 2], np.int64)  # -1 wraps to row 2
    up = UP.copy()
    C._forward_and_gradient(Records(), W, ids, up)
    assert len(seen) == 1 and seen[0][0] is W and seen[0][1] is ids and seen[0][2] is up
    forward_only = Records()
    forward_only.declared = _declared(gradient="none")
    C._forward_and_gradient(forward_only, W, ids, None)
    assert len(seen) == 1  # a forward-only adapter is not asked for a gradient


class WrongRow(Faithful):
    id = "wrong-row"

    def forward(self, weights, ids):
        return np.take(weights, np.clip(ids, 0, None), axis=0)


class WrongGradient(Faithful):
    id = "wrong-gradient"

    def gradient(self, weights, ids, upstream):
        return super().gradient(weights, ids, upstream) * 2


def test_forward_and_gradient_failures_show_the_recipes_and_the_inputs():
    ids = np.array([-1, 0], np.int64)
    up = UP[:2].copy()
    recipes = {"ids": "np.array([-1, 0])"}
    with pytest.raises(ConformanceFailure) as forward:
        C._forward_and_gradient(WrongRow(), W, ids, up, recipes)
    got = np.take(W, [0, 0], axis=0)
    assert str(forward.value) == _failure(
        WrongRow(), f"2 output values differ from W[ids] (bit-exact); first at (0, 0): got {got[0, 0]!r}, "
        f"expected {W[2, 0]!r}", LOOKUP, FORWARD, ids="np.array([-1, 0])", W=W)
    with pytest.raises(ConformanceFailure) as gradient:
        C._forward_and_gradient(WrongGradient(), W, ids, up)
    text = str(gradient.value)
    assert text.startswith("wrong-gradient: gradient differs from the scatter-add at row 0 col 0: got ")
    assert "in float32)\n--- reproduce ---\n" in text
    assert text.endswith(snippet(WrongGradient(), "adapter.weight_grad(W, ids, up)",
                                 "oracle.gradient(ids % len(W), up, len(W))", W=W, ids=ids, up=up))
    with pytest.raises(ConformanceFailure) as shown:
        C._forward_and_gradient(WrongGradient(), W, ids, up, recipes)
    assert str(shown.value).endswith(snippet(WrongGradient(), "adapter.weight_grad(W, ids, up)",
                                             "oracle.gradient(ids % len(W), up, len(W))",
                                             ids="np.array([-1, 0])", W=W, up=up))


# --- _expect_gradient -------------------------------------------------------------------------
GRAD, SCATTER = "adapter.weight_grad(W, ids, up)", "oracle.gradient(ids % len(W), up, len(W))"
EXACT = np.array([[2.0, 4.0], [0.0, 0.0], [8.5, 17.0]])  # scatter-add of UP at IDS (2, 0, 2)


def _grad_failure(adapter, got, ids=IDS, dtype="float32", precision="float32"):
    shown = {"W": W, "ids": ids, "up": UP}
    with pytest.raises(ConformanceFailure) as info:
        C._expect_gradient(adapter, got, W, ids, UP, shown, dtype, precision)
    return str(info.value)


def test_a_gradient_of_the_wrong_shape_or_dtype_is_reported():
    adapter = Faithful()
    assert _grad_failure(adapter, np.zeros((3, 3), np.float32)) == _failure(
        adapter, "gradient shape (3, 3), expected the table's (3, 2)", GRAD, SCATTER, W=W, ids=IDS, up=UP)
    assert _grad_failure(adapter, EXACT) == _failure(
        adapter, "gradient dtype float64, expected float32", GRAD, SCATTER, W=W, ids=IDS, up=UP)
    C._expect_gradient(adapter, EXACT, W, IDS, UP, {}, "float64")  # the dtype asked for is the one checked


def test_a_gradient_equal_to_the_scatter_add_of_wrapped_ids_passes():
    C._expect_gradient(Faithful(), EXACT.astype(np.float32), W, IDS, UP, {}, "float32")
    C._expect_gradient(Faithful(), EXACT.astype(np.float32), W, IDS - 3, UP, {}, "float32")  # -1 is row 2


def test_a_nonzero_untouched_row_is_named_as_such():
    got = EXACT.astype(np.float32)
    got[1, 1] = 0.25
    assert _grad_failure(Faithful(), got) == _failure(
        Faithful(), f"gradient an untouched row is not zero at row 1 col 1: got {got[1, 1]!r}, exact "
        f"{np.float64(0.0)!r}, 0 duplicate ids, tolerance 0 (u*|exact| + gamma_(k-1)*sum|up| in float32)",
        GRAD, SCATTER, W=W, ids=IDS, up=UP)


def test_a_row_off_by_more_than_the_summation_bound_differs_from_the_scatter_add():
    u = 2.0 ** -24
    tol = u * 17.0 + (u / (1 - u)) * 17.0  # row 2 col 1: two ids, |exact| = 17, sum|up| = 17
    got = EXACT.astype(np.float32)
    got[0, 0] = 2.5  # one id: the bound is u*|exact| only
    got[2, 1] = np.float32(17.0 + 2.0 ** -18)  # two ulps
    assert abs(float(got[2, 1]) - 17.0) > tol
    text = _grad_failure(Faithful(), got)
    assert text == _failure(
        Faithful(), f"gradient differs from the scatter-add at row 0 col 0: got {got[0, 0]!r}, exact "
        f"{np.float64(2.0)!r}, 1 duplicate ids, tolerance {u * 2.0:.3g} (u*|exact| + gamma_(k-1)*sum|up| in "
        "float32)", GRAD, SCATTER, W=W, ids=IDS, up=UP)
    got[0, 0] = 2.0
    assert f"at row 2 col 1: got {got[2, 1]!r}, exact {np.float64(17.0)!r}, 2 duplicate ids, tolerance " \
           f"{tol:.3g} (" in _grad_failure(Faithful(), got)


def test_a_gradient_within_the_summation_bound_passes_and_a_coarser_matmul_widens_it():
    up = np.array([[1.0, 1.0], [2.0 ** -12, 0.0]], np.float32)
    ids = np.array([0, 0])
    exact = np.array([[1.0 + 2.0 ** -12, 1.0], [0.0, 0.0]])
    on_bound = np.array([[1.0, 1.0], [0, 0]], np.float32)  # lost the small term: err 2**-12
    with pytest.raises(ConformanceFailure, match="in float32\\)"):
        C._expect_gradient(Faithful(), on_bound, W[:2], ids, up, {}, "float32")
    C._expect_gradient(Faithful(), on_bound, W[:2], ids, up, {}, "float32", "tf32")  # tf32 bound holds
    C._expect_gradient(Faithful(), exact.astype(np.float32), W[:2], ids, up, {}, "float32")
    # Exactly on the bound passes: float16 u = 2**-11, one id, |exact| = 2048 -> tolerance 1.
    w16 = np.zeros((1, 1), np.float16)
    C._expect_gradient(Faithful(), np.array([[2049.0]], np.float16), w16, np.array([0]),
                       np.array([[2048.0]], np.float16), {}, "float16")
    with pytest.raises(ConformanceFailure, match="tolerance 1 \\(u\\*\\|exact\\| \\+ gamma_\\(k-1\\)\\*sum\\|up\\| in "
                       "float16\\)"):
        C._expect_gradient(Faithful(), np.array([[2050.0]], np.float16), w16, np.array([0]),
                           np.array([[2048.0]], np.float16), {}, "float16")
