"""How ``run_check`` and ``check_adapter`` classify what an adapter does, in-process: each
outcome produced on purpose, with the detail a user needs to act on it."""

import numpy as np
import pytest
from broken_adapters import Faithful, LosesDuplicates, _declared

from harness import check_adapter
from harness.checks import CHECKS, CHECKS_BY_NAME, run_check
from harness.errors import HarnessError


class RaisesInForward(Faithful):
    id = "raises-in-forward"

    def forward(self, weights, ids):
        raise ValueError("kernel table overflow")


class RaisesDeclared(RaisesInForward):
    """Declares that scalar ids are refused, and refuses them by raising."""

    id = "raises-declared"
    declared = _declared(deviations={"scalar_id": "0-d ids are refused"})


def test_check_adapter_runs_every_check_once_and_the_faithful_one_passes_them_all():
    results = check_adapter(Faithful())
    assert [r.check for r in results] == [c.name for c in CHECKS]
    statuses = {r.check: r.status for r in results}
    assert statuses.pop("onehot_agrees_with_gather") == "not_applicable"  # it is the gather side
    bag_checks = [c.name for c in CHECKS if c.family == "bag"]
    assert bag_checks and all(statuses.pop(name) == "not_applicable" for name in bag_checks)  # a lookup adapter
    assert set(statuses.values()) == {"passed"}, [(r.check, r.detail[:200]) for r in results
                                                  if r.status not in ("passed", "not_applicable")]
    # The property checks count the examples they ran: a property that ran none proved nothing.
    assert all(r.examples >= 1 for r in results if r.check.startswith(("forward[", "gradient[")))


def test_check_adapter_runs_only_the_named_checks_and_refuses_unknown_names():
    [only] = check_adapter(LosesDuplicates(), ["duplicates_accumulate"])
    assert (only.check, only.status) == ("duplicates_accumulate", "failed")
    with pytest.raises(HarnessError, match=r"unknown check\(s\) \['no_such_check'\]"):
        check_adapter(Faithful(), ["scalar_id", "no_such_check"])


def test_a_crash_is_a_failure_whose_detail_names_the_exception_and_the_adapter_line():
    result = run_check(RaisesInForward(), "scalar_id")
    assert result.status == "failed"
    first, *frames = result.detail.splitlines()
    assert "ValueError: kernel table overflow" in first
    assert any("test_check_outcomes.py" in line and "in forward" in line for line in frames), result.detail


def test_a_crash_where_a_deviation_is_declared_is_that_deviation_observed():
    result = run_check(RaisesDeclared(), "scalar_id")
    assert result.status == "xfailed"
    assert result.detail.startswith("declared deviation: 0-d ids are refused\nobserved: ")
    assert "ValueError: kernel table overflow" in result.detail
    assert run_check(RaisesDeclared(), "empty_batch").status == "failed"  # declared for scalar_id only


def test_a_declared_deviation_that_occurs_is_xfailed_with_what_was_observed():
    class Declares(LosesDuplicates):
        declared = _declared(deviations={"duplicates_accumulate": "buffered +="})

    result = run_check(Declares(), "duplicates_accumulate")
    assert result.status == "xfailed"
    assert result.detail.startswith("declared deviation: buffered +=\nobserved: ")


def test_a_declared_deviation_that_does_not_occur_fails():
    class DeclaresNothingReal(Faithful):
        declared = _declared(deviations={"scalar_id": "drops the axis"})

    result = run_check(DeclaresNothingReal(), CHECKS_BY_NAME["scalar_id"])
    assert (result.status, result.detail) == ("failed", "declared deviation did not occur: drops the axis")


def test_not_applicable_declared_or_structural_never_runs_the_check():
    class NoDuplicates(Faithful):
        declared = _declared(weight_dtypes=("float32",), not_applicable={"duplicates_accumulate": "lookup only"})

        def gradient(self, weights, ids, upstream):
            raise AssertionError("a not-applicable check must not call the adapter")

    declared = run_check(NoDuplicates(), "duplicates_accumulate")
    assert (declared.status, declared.detail, declared.examples) == ("not_applicable", "lookup only", 0)
    structural = run_check(NoDuplicates(), "forward[float16]")
    assert structural.status == "not_applicable" and "float16" in structural.detail
    gather_side = run_check(Faithful(), "onehot_agrees_with_gather")
    assert gather_side.status == "not_applicable" and "gather side" in gather_side.detail


def test_the_observed_behaviour_is_recorded_with_the_verdict():
    result = run_check(Faithful(), "out_of_range")
    assert result.status == "passed" and result.observed["out_of_range"] == "raise"
    assert "id 5: raise (IndexError" in result.observed["out_of_range_detail"]
    neg = run_check(Faithful(), "negative_index")
    assert neg.observed["negative_index"] == "wrap"
    assert np.isfinite(neg.duration_s) and neg.duration_s < 60


def test_a_crash_names_the_cause_a_wrapping_message_puts_on_its_second_line():
    from harness.checks import _headline

    wrapped = ValueError("Exception encountered when calling Lookup.call().\n\n\x1b[1mas_list() is not defined "
                         "on an unknown TensorShape.\x1b[0m\n\nArguments received by Lookup.call():")
    assert _headline(wrapped) == ("Exception encountered when calling Lookup.call(). as_list() is not defined on an "
                                  "unknown TensorShape.")
    assert _headline(IndexError("index out of range in self")) == "index out of range in self"
