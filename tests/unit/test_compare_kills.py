"""--compare's edges, each a behaviour a user sees: which rows load raw files, the ratio's
direction, the interval disagreeing with the ratio, the median-agreement boundary, the order of
slower rows. Machine folders are written with test_compare_intervals' writer."""

from test_compare_intervals import MID, RUN_NEW, RUN_OLD, compare, rounds, write_machine

from harness.report import compare as cmp


def test_an_interval_that_disagrees_with_the_ratio_is_unchanged_not_a_verdict():
    # A ratio of 0.5 with an interval above 1 cannot be called faster (nor slower).
    assert cmp.interval_verdict(0.5, 1.1, 1.5, 0.05) == "unchanged"
    assert cmp.interval_verdict(1.5, 0.6, 0.9, 0.05) == "unchanged"
    assert cmp.interval_verdict(0.5, 0.4, 0.6, 0.05) == "faster"
    assert cmp.interval_verdict(1.5, 1.4, 1.6, 0.05) == "slower"


def test_samples_must_give_the_rows_median_to_the_agreement_tolerance():
    median = 0.4345110575565414  # a median where median + tol * median - median == tol * median exactly
    row = {"median_s": median}
    at = median + cmp.MEDIAN_AGREEMENT * median
    assert abs(at - median) == cmp.MEDIAN_AGREEMENT * median
    assert cmp._behind_row([at] * 3, row)  # exactly at the tolerance: still the row's own samples
    assert not cmp._behind_row([median * (1 + 2 * cmp.MEDIAN_AGREEMENT)] * 3, row)
    row = {"median_s": 1.0}
    assert not cmp._behind_row([1.0, float("nan"), 1.0], row) and not cmp._behind_row([1.0, 0.0, 1.0], row)
    assert not cmp._behind_row(None, row) and not cmp._behind_row([], row)


def test_the_ratio_is_new_over_old_when_old_is_not_one(tmp_path, capsys):
    old = [dict(vocab=1, median=2.0, iqr=0.01, samples=rounds(2.0, 0.01))]
    new = [dict(vocab=1, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01))]  # twice as fast
    _, table, _ = compare(tmp_path, old, new, capsys)
    basis, cell, verdict = table[1]
    assert (basis, verdict) == ("bootstrap 95 %", "faster") and cell.startswith("0.500 [")


def test_rows_not_measured_on_both_sides_read_no_raw_file(tmp_path, capsys):
    # Each row's raw file is missing; only the row measured in both runs may complain about it.
    old = [dict(vocab=1, median=1.0, iqr=0.01, samples=None),
           dict(vocab=2, median=1.0, iqr=0.01, samples=None, run_id="gone-old")]
    new = [dict(vocab=1, median=1.0, iqr=0.01, samples=None),
           dict(vocab=3, median=1.0, iqr=0.01, samples=None, run_id="gone-new")]
    code, table, err = compare(tmp_path, old, new, capsys)
    complaints = [line for line in err.splitlines() if line.startswith("skipped:")]
    assert len(complaints) == 2 and all("/raw/r-" in line and "bench-core.json: missing" in line
                                        for line in complaints), err  # row 1's file on each side, no other
    assert code == 3 and table[1][0] == "IQR rule"


def test_a_row_without_a_part_or_not_ok_reads_no_raw_file(tmp_path, capsys):
    old = [dict(vocab=1, median=1.0, iqr=0.01, samples=None, part="")]
    new = [dict(vocab=1, median=1.0, iqr=0.01, samples=None, part="")]
    code, table, err = compare(tmp_path, old, new, capsys)
    assert code == 0 and "skipped:" not in err and table[1][0] == "IQR rule"
    errored = tmp_path / "errored"
    for side, run in (("old", RUN_OLD), ("results", RUN_NEW)):
        write_machine(errored / side / MID, run, [dict(vocab=1, median=1.0, iqr=0.01, samples=None)])
        csv_path = errored / side / MID / "bench.csv"
        csv_path.write_text(csv_path.read_text().replace(",ok,", ",error,"))
    code = cmp_main(errored)
    assert code == 0 and "skipped:" not in capsys.readouterr().err


def cmp_main(root):
    from harness.report.__main__ import main

    return main(["--results", str(root / "results"), "--compare", str(root / "old" / MID)])


def test_slower_rows_are_listed_worst_first(tmp_path, capsys):
    old = [dict(vocab=v, median=1.0, iqr=0.01, samples=rounds(1.0, 0.01)) for v in (1, 2, 3)]
    new = [dict(vocab=1, median=1.5, iqr=0.01, samples=rounds(1.5, 0.01)),
           dict(vocab=2, median=3.0, iqr=0.01, samples=rounds(3.0, 0.01)),
           dict(vocab=3, median=2.0, iqr=0.01, samples=rounds(2.0, 0.01))]
    compare(tmp_path, old, new, capsys)
    text = (tmp_path / "results" / "COMPARE.md").read_text()
    order = [int(line.split("|")[7]) for line in text.splitlines() if line.startswith("| a-gather ")]
    assert order == [2, 3, 1]
