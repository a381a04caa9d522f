"""The method check of a benchmark part: the harness's median of a forward against a bare
``timeit`` loop of the same call, in the same process. Beyond ``SELF_CHECK_RATIO`` the
harness's own timing path is suspect and the part is reported as failed."""

from __future__ import annotations

import statistics
import timeit

import numpy as np

from harness.bench.measure import CaseTimer
from harness.bench.sweep import Case, Inputs, index_dtype_for

SELF_CHECK_RATIO = (0.25, 4.0)
# The harness's rounds span at least about as long as one of timeit's repeats (autorange: 0.2 s
# or more), so a stall of the machine weighs on both medians alike: tiny's own budget (10 rounds
# of one 0.2 ms call) let one 50 ms stall decide the harness's median.
SELF_CHECK_ROUNDS = (0.2, 200)  # (seconds, most rounds), the profile's when it asks for more
SELF_CHECKED = "numpy-gather"  # always checked: no framework between the harness and the kernel


def checked_adapters(items) -> list[str]:
    """The part's CPU gathers whose timing path is checked (NumPy's always, first)."""
    others = [i.slot.adapter.id for i in items
              if i.slot is not None and i.slot.adapter is not None and i.case is not None
              and i.case.is_floor and i.case.pass_ == "forward"
              and i.slot.adapter.variant == "gather" and i.slot.adapter.device == "cpu"
              and i.slot.adapter.id != SELF_CHECKED]
    return [SELF_CHECKED, *others]


class SelfCheck:
    """Runs the self-checks of one part and keeps their entries."""

    def __init__(self, timer: CaseTimer, inputs: Inputs, case_shape: tuple[int, int, int]):
        self.timer = timer
        self.inputs = inputs
        self.case_shape = case_shape  # (vocab, dim, n_ids): the profile's self-check case
        self.entries: list[dict] = []
        self.reference_s = 0.0  # seconds inside the bare timeit loops (measuring too)

    def run(self, benchmark, repeat: int, adapter) -> dict:
        """The bare loop runs before and after the harness's measurement and its samples are
        pooled, so drift between the two (another framework's threads winding down, frequency)
        cannot pose as a harness error. Only the first repeat has a bare loop; the others show
        the harness's run-to-run spread."""
        vocab, dim, n_ids = self.case_shape
        case = Case("forward", "float32", vocab, dim, n_ids, "uniform")
        index_dtype = index_dtype_for(adapter.declared.index_dtypes) or "int64"
        ids = self.inputs.ids(vocab, case.n_ids, "uniform").astype(index_dtype)
        bare = self.bare_loop(adapter, case, ids) if repeat == 0 and benchmark.enabled else None
        profile = self.timer.profile
        budget = (max(profile.case_budget_s, SELF_CHECK_ROUNDS[0]), max(profile.max_rounds, SELF_CHECK_ROUNDS[1]))
        measured = self.timer.measure(benchmark, adapter, case, ids, call_limit=False, budget=budget)
        entry = {"repeat": repeat, "adapter": adapter.id, **case.as_dict(), "index_dtype": index_dtype,
                 "harness_median_s": measured["median_s"], "harness_iqr_s": measured["iqr_s"],
                 "rounds": measured["rounds"], "iterations": measured["iterations"]}
        if "samples" in measured:  # the rounds in order: a failed check shows when it went slow
            entry["harness_samples_s"] = measured["samples"]
        if bare is not None:
            per_call = bare.before + bare()  # the bare loop before and after the harness's rounds
            self.reference_s += sum(per_call) * bare.number
            entry.update(timeit_median_s=float(np.median(per_call)), timeit_min_s=min(per_call),
                         timeit_number=bare.number, timeit_repeat=len(per_call))
            ratio = entry["harness_median_s"] / entry["timeit_median_s"]
            entry["ok"] = SELF_CHECK_RATIO[0] < ratio < SELF_CHECK_RATIO[1]
            if not entry["ok"]:
                entry["problem"] = (f"{adapter.id}: harness/timeit ratio {ratio:.2f} outside {SELF_CHECK_RATIO} "
                                    f"({entry['harness_median_s']:.3g} s vs {entry['timeit_median_s']:.3g} s)")
        self.entries.append(entry)
        return entry

    def bare_loop(self, adapter, case: Case, ids_np: np.ndarray):
        """A timeit loop of ``sync(forward(w, ids))`` on prepared values; calling it returns 7
        per-call times. Its first 7 are taken at once and kept as ``.before``."""
        w = adapter.prepare_weights(self.inputs.weights(case.vocab, case.dim, case.dtype))
        ids = adapter.prepare_ids(ids_np)
        fn = adapter.compile(lambda w, ids: adapter.forward(w, ids))
        sync = adapter.synchronize
        sync(fn(w, ids))  # compile outside the loop
        timer = timeit.Timer(lambda: sync(fn(w, ids)))
        number, _ = timer.autorange()

        def sample() -> list[float]:
            return [t / number for t in timer.repeat(repeat=7, number=number)]

        sample.number = number
        sample.before = sample()
        return sample


def self_check_summary(meta: dict) -> list[dict]:
    """Per part and checked adapter: harness median vs the bare loop (ratio), and the spread of
    repeated medians."""
    out = []
    for part, p in meta["parts"].items():
        by_adapter: dict[str, list[dict]] = {}
        for c in p.get("self_check") or []:
            by_adapter.setdefault(c.get("adapter", "?"), []).append(c)
        for checks in by_adapter.values():
            medians = [c["harness_median_s"] for c in checks if c.get("harness_median_s")]
            first = next((c for c in checks if "timeit_median_s" in c), None)
            entry = {"part": part, "case": f"{checks[0]['adapter']} V={checks[0]['vocab']} D={checks[0]['dim']} "
                                            f"N={checks[0]['n_ids']} {checks[0].get('index_dtype', 'int32')}",
                     "repeats": len(medians), "timed": bool(p.get("timed"))}
            if first:
                entry.update(harness_median_s=first["harness_median_s"], timeit_median_s=first["timeit_median_s"],
                             timeit_min_s=first["timeit_min_s"],
                             ratio=first["harness_median_s"] / first["timeit_median_s"])
            if medians:
                mean = statistics.fmean(medians)
                entry.update(min_median_s=min(medians), max_median_s=max(medians),
                             cv=(statistics.stdev(medians) / mean) if len(medians) > 1 and mean else None)
            out.append(entry)
    return out
