"""One plug-in adapter per verdict the conformance matrix can show (tests/unit/test_verdicts.py).

Each is ``broken_adapters.Faithful`` (correct, passes every check) or one of its broken
variants, with a declaration chosen so that the selected checks produce exactly one verdict."""

from broken_adapters import Faithful, LosesDuplicates, _declared


class Passes(Faithful):
    """Faithful: every check passes."""

    id = "verdict-pass"


class Fails(LosesDuplicates):
    """Loses duplicate updates and says nothing: FAIL."""

    id = "verdict-fail"


class DeclaresWhatItDoes(LosesDuplicates):
    """Loses duplicate updates and declares it: xfail."""

    id = "verdict-xfail"
    declared = _declared(deviations={"duplicates_accumulate": "buffered +=, duplicates keep one update"})


class DeclaresWhatItDoesNot(Faithful):
    """Declares lost duplicates but accumulates correctly: a strict xfail that passed is a failure."""

    id = "verdict-xpass-strict"
    declared = _declared(deviations={"duplicates_accumulate": "buffered +=, duplicates keep one update"})


class NotApplicable(Faithful):
    """Declares duplicates_accumulate not applicable, and only float32 and float64 weights."""

    id = "verdict-not-applicable"
    declared = _declared(weight_dtypes=("float32", "float64"),
                         not_applicable={"duplicates_accumulate": "a lookup-only table: no gradient buffer"})


def make_verdicts():
    return [Passes(), Fails(), DeclaresWhatItDoes(), DeclaresWhatItDoesNot(), NotApplicable()]
