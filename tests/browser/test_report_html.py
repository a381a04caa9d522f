"""report.html in a real headless Chromium: it loads cleanly, offline, and shows what it should.

The page is the report of the real results tree (tests/real_results.py): what the conformance
and bench writers produced in this session, so the counts below come from its files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from real_results import MACHINES

from harness.report import build_report


@pytest.fixture(scope="module")
def report_html(real_results, tmp_path_factory) -> Path:
    root = real_results.copy(tmp_path_factory.mktemp("report") / "results").root
    result = build_report(root)
    assert result.exit_code == 0, result.data.problems
    return root / "report.html"


@pytest.fixture(scope="module")
def cell_counts(real_results) -> Counter:
    """Cells per status over both machines, as their conformance.json files record them."""
    return Counter(c["status"] for m in MACHINES for c in real_results.cells(m).values())


def test_report_loads_clean_and_shows_matrix_and_plots(browser, report_html, artifacts_dir, real_results,
                                                       cell_counts):
    browser.open(report_html.as_uri())
    assert browser.errors() == []
    # Self-contained: nothing but the page itself and data: URIs was requested.
    foreign = [u for u in browser.requested_urls() if not u.startswith(("data:", report_html.as_uri()))]
    assert foreign == []

    assert browser.evaluate("document.title") == "embedding-harness report"
    # One grid per machine: an adapter per row, a check per column, as that machine's file has them.
    for mid in MACHINES:
        adapters = real_results.conformance(mid)["adapters"]
        checks = list(dict.fromkeys(c["check"] for a in adapters for c in a["checks"]))
        headers = browser.evaluate(
            f"Array.from(document.querySelectorAll('#grid-{mid} thead th')).map(th => th.textContent)")
        assert headers == ["adapter", *checks]
        rows = browser.evaluate(
            f"Array.from(document.querySelectorAll('#grid-{mid} tbody tr')).map(tr => tr.dataset.adapter)")
        assert rows == [a["id"] for a in adapters]
    statuses = browser.evaluate("""(() => {
        const count = s => document.querySelectorAll('table.grid td.st-' + s).length;
        return {passed: count('passed'), failed: count('failed'), xfailed: count('xfailed'),
                not_applicable: count('not_applicable'), skipped: count('skipped')};
    })()""")
    assert cell_counts["failed"] and cell_counts["xfailed"]  # the real runs have both
    # A whole-adapter skip (a framework not installed) is one cell across its row, for all its checks.
    skipped_whole = [a for m in MACHINES for a in real_results.conformance(m)["adapters"] if a["skip_reason"]]
    folded = sum(1 for a in skipped_whole for c in a["checks"] if c["status"] == "skipped")
    assert cell_counts["not_applicable"]  # numpy-onehot declares one
    assert skipped_whole and statuses == {
        **{s: cell_counts[s] for s in ("passed", "failed", "xfailed", "not_applicable")},
        "skipped": cell_counts["skipped"] - folded + len(skipped_whole)}
    # The status colours really apply (the CSS is inline and parsed).
    failed_bg = browser.evaluate("getComputedStyle(document.querySelector('table.grid td.st-failed')).backgroundColor")
    assert failed_bg == "rgb(255, 204, 213)"

    images = browser.evaluate("""Array.from(document.querySelectorAll('img.plot')).map(
        img => ({complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
                 src: img.src.slice(0, 22)}))""")
    assert len(images) == sum(len(real_results.plots(m)) for m in MACHINES) >= len(MACHINES)
    for image in images:
        assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
        assert image["src"] == "data:image/png;base64,"

    # One benchmark section per machine; no timing table spans machines.
    sections = browser.evaluate(
        "Array.from(document.querySelectorAll('#benchmarks h3')).map(h => h.id)")
    assert sections == [f"bench-{m}" for m in MACHINES]

    browser.screenshot(artifacts_dir / "report.png")
    shot = (artifacts_dir / "report.png").read_bytes()
    assert shot.startswith(b"\x89PNG") and len(shot) > 20_000


def test_problem_filter_hides_rows_that_passed_everywhere(browser, report_html):
    browser.open(report_html.as_uri())
    visible = """Array.from(document.querySelectorAll('table.grid tbody tr'))
                 .filter(tr => tr.offsetParent !== null).length"""
    before = browser.evaluate(visible)
    browser.evaluate("document.querySelector('input[data-filter=conformance]').click()")
    after = browser.evaluate(visible)
    assert 0 < after < before
    # The failing check is still on screen (its machine's grid opens by itself).
    assert browser.evaluate("document.querySelector('table.grid td.st-failed').offsetParent !== null")
    assert browser.errors() == []


def test_a_clicked_cell_shows_its_detail_under_its_grid(browser, report_html, real_results):
    browser.open(report_html.as_uri())
    failed = [(m, aid, check, cell) for m in MACHINES for (aid, check), cell in real_results.cells(m).items()
              if cell["status"] == "failed"]
    mid, aid, check, cell = failed[0]
    panel = f"document.getElementById('detail-{mid}')"
    assert browser.evaluate(f"{panel}.hidden") is True
    browser.evaluate(f"""document.querySelector('#grid-{mid} tr[data-adapter="{aid}"] td[data-check="{check}"]')
                         .click()""")
    assert browser.evaluate(f"{panel}.hidden") is False
    assert browser.evaluate(f"{panel}.querySelector('.what').textContent") == f"{aid} · {check}: ✗ FAIL"
    shown = browser.evaluate(f"{panel}.querySelector('pre').textContent")
    assert shown and shown == cell["detail"][:len(shown)] and len(shown) >= min(len(cell["detail"]), 2000)
    assert browser.errors() == []


def test_each_question_takes_about_a_screen(browser, report_html):
    """At 1400 x 900, as it opens: every section (does it conform? where do they differ? how fast?
    where does one-hot pay?) within about one and a half screens; details are folded."""
    browser.open(report_html.as_uri(), width=1400, height=900)
    heights = browser.evaluate(
        "Object.fromEntries(Array.from(document.querySelectorAll('main > section')).map(s => [s.id, s.offsetHeight]))")
    assert {"conformance", "differences", "benchmarks", "onehot", "machines"} <= set(heights)
    assert {k: h for k, h in heights.items() if h > 1350} == {}
    assert browser.evaluate("document.documentElement.scrollWidth") <= 1400  # no sideways scrolling


def test_error_detection_is_real(browser, tmp_path):
    """The checks above could pass vacuously if errors went unseen: show that they are seen."""
    page = tmp_path / "broken.html"
    page.write_text('<!doctype html><html><head><link rel="icon" href="data:,"></head><body>'
                    '<img id="gone" src="missing.png">'
                    '<script>console.error("boom from console"); undefinedFunction();</script></body></html>')
    browser.open(page.as_uri())
    errors = "\n".join(browser.errors())
    assert "boom from console" in errors
    assert "undefinedFunction" in errors
    assert "missing.png" in errors or "ERR_FILE_NOT_FOUND" in errors
    assert browser.evaluate("document.getElementById('gone').naturalWidth") == 0
