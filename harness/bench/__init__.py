"""Benchmarks: embedding lookup timings across frameworks, written to results/<machine-id>/.

``python -m harness.bench run --part LABEL`` benchmarks one process "part" (pytest-benchmark
over ``tests/bench``), ``finalize`` merges the parts of the run into bench.csv, BENCH.md,
bench_meta.json and plots/, and ``readme`` regenerates the README's benchmark section.

Modules: sweep (profiles, cases, inputs), timing (sync-aware timers, CUDA events, memory),
membw (copy bandwidth), metrics (bytes, GB/s, FLOP/s), suite/measure/selfcheck (the in-process
runner), run/parts (child process, run manifest), rows/crossover/slices/finalize (the results).
BENCH.md, its plots and the README's sections are views: harness/views.
"""

from harness.bench.rows import COLUMNS

__all__ = ["COLUMNS"]
