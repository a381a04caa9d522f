"""Every document the project writes, in one place: each is a view of the result files,
built from pandas DataFrames and written through one table writer (``tables``) with one
set of formats (``formats``) and one escaping (``mdtext``).

=====================================  =========================================
document                               view
=====================================  =========================================
results/<machine>/conformance.md       ``conformance.conformance_md``
README: conformance section            ``conformance.readme_section``
results/<machine>/[profile-*/]BENCH.md ``bench.bench_md`` (with ``regimes``)
README: benchmark sections             ``bench_readme.render`` / ``render_gpu``
results/<machine>/…/plots/*.png        ``plots.write_all`` (matplotlib)
results/REPORT.md, results/report.html ``report_md.render`` / ``report_html.render``
                                       (over ``conformance_grid``, ``bench_pivots``)
results/COMPARE.md                     ``compare_md.render``
README: kill rate and mutation score   ``selftests``
=====================================  =========================================

``readme.replace_section`` is the one writer of a README section. Nothing here measures or
decides a verdict: the views read what harness/conformance.py, harness/bench and
harness/report recorded and merged."""
