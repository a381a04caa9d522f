"""The method check of a benchmark part: the harness's timing of a forward against a bare
``timeit`` loop of the same call, in the same process, the two taking turns round by round.
Beyond ``SELF_CHECK_RATIO`` the harness's own timing path is suspect and the part is reported
as failed."""

from __future__ import annotations

import inspect
import statistics
import timeit

import numpy as np

from harness.bench import timing
from harness.bench.measure import CaseTimer
from harness.bench.sweep import Case, Inputs, index_dtype_for

SELF_CHECK_RATIO = (0.25, 4.0)
# Enough rounds that no stall of the machine decides the median of the paired ratios: tiny's
# own budget (10 rounds of one 0.2 ms call) would give 10 pairs.
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
        """Only the first repeat is paired with a bare loop; the others show the harness's
        run-to-run spread."""
        vocab, dim, n_ids = self.case_shape
        case = Case("forward", "float32", vocab, dim, n_ids, "uniform")
        index_dtype = index_dtype_for(adapter.declared.index_dtypes) or "int64"
        ids = self.inputs.ids(vocab, case.n_ids, "uniform").astype(index_dtype)
        profile = self.timer.profile
        budget = tuple(map(max, profile.round_budget, SELF_CHECK_ROUNDS))
        bare = None
        if repeat == 0 and benchmark.enabled:
            require_teardown(benchmark)
            bare = BareLoop(adapter, self.inputs.weights(vocab, dim, case.dtype), ids,
                            warm_up_s=profile.warm_up_limits(budget[0]))
        measured = self.timer.measure(benchmark, adapter, case, ids, call_limit=False, budget=budget,
                                      between_rounds=bare.block if bare is not None else None)
        entry = {"repeat": repeat, "adapter": adapter.id, **case.as_dict(), "index_dtype": index_dtype,
                 "harness_median_s": measured["median_s"], "harness_iqr_s": measured["iqr_s"],
                 "rounds": measured["rounds"], "iterations": measured["iterations"]}
        if "samples" in measured:  # the rounds in order: a failed check shows when it went slow
            entry["harness_samples_s"] = measured["samples"]
        if bare is not None:
            entry.update(self.compare(measured["samples"], bare.samples, measured["iterations"]))
            self.reference_s += sum(bare.samples) * measured["iterations"]
            if not entry["ok"]:
                entry["problem"] = (f"{adapter.id}: harness/timeit ratio {entry['ratio']:.2f} outside "
                                    f"{SELF_CHECK_RATIO} (median of {entry['timeit_repeat']} paired rounds; "
                                    f"medians {entry['harness_median_s']:.3g} s vs {entry['timeit_median_s']:.3g} s)")
        self.entries.append(entry)
        return entry

    @staticmethod
    def compare(harness: list[float], blocks: list[float], iterations: int) -> dict:
        """Each harness round against the bare block (as many calls: ``iterations``) that ran
        right after it; both in seconds per call. Their ratio is
        what is judged, its median over the rounds: a machine whose speed wanders (measured
        here: the same gather at 1.5 to 4.7 ms within seconds on a shared 2-core VM) moves both
        sides of a pair alike, while a fault of the harness's timing path moves every pair."""
        if not harness or len(blocks) < len(harness):
            raise RuntimeError(f"the self-check's bare loop ran {len(blocks)} blocks for "
                               f"{len(harness)} harness rounds: it must run after every round")
        # pytest-benchmark runs one more call and block after its last round (iterations > 1)
        pairs = list(zip(harness, blocks[:len(harness)], strict=True))
        ratio = statistics.median(h / b for h, b in pairs)
        timeit_s = [b for _, b in pairs]
        return {"timeit_median_s": statistics.median(timeit_s), "timeit_min_s": min(timeit_s),
                "timeit_number": iterations, "timeit_repeat": len(pairs), "timeit_samples_s": timeit_s,
                "paired": True, "ratio": ratio, "ok": SELF_CHECK_RATIO[0] < ratio < SELF_CHECK_RATIO[1]}


def require_teardown(benchmark) -> None:
    """The bare loop runs as pedantic's ``teardown``, which pytest-benchmark has since 5.2."""
    if "teardown" not in inspect.signature(benchmark.pedantic).parameters:
        raise RuntimeError("the timing self-check needs pytest-benchmark >= 5.2 (pedantic's teardown); "
                           "install it with: pip install 'pytest-benchmark>=5.2'")


class BareLoop:
    """``sync(forward(w, ids))`` in a ``timeit`` loop, on its own prepared weights, ids and
    compiled function, warmed up like the harness's calls. ``block(iterations)`` gives what
    pytest-benchmark runs after each round (its pedantic ``teardown``, untimed by it): one
    timeit block of as many calls as the round had."""

    def __init__(self, adapter, weights: np.ndarray, ids_np: np.ndarray, warm_up_s: tuple[float, float]):
        w = adapter.prepare_weights(weights)
        ids = adapter.prepare_ids(ids_np)
        fn = adapter.compile(lambda w, ids: adapter.forward(w, ids))
        sync = adapter.synchronize
        timing.warm_up(lambda: sync(fn(w, ids)), *warm_up_s)  # (least, most seconds), the harness's own
        self.timer = timeit.Timer(lambda: sync(fn(w, ids)))
        self.samples: list[float] = []  # seconds per call of each block, in order

    def block(self, iterations: int):
        def run_block():
            self.samples.append(self.timer.timeit(number=iterations) / iterations)

        return run_block


def self_check_summary(meta: dict) -> list[dict]:
    """Per part and checked adapter: the harness against the bare loop (ratio), and the spread
    of repeated medians."""
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
            if first:  # runs before the paired check kept no ratio: theirs was of the two medians
                entry.update(harness_median_s=first["harness_median_s"], timeit_median_s=first["timeit_median_s"],
                             timeit_min_s=first["timeit_min_s"], paired=bool(first.get("paired")),
                             ratio=first.get("ratio", first["harness_median_s"] / first["timeit_median_s"]))
            if medians:
                mean = statistics.fmean(medians)
                entry.update(min_median_s=min(medians), max_median_s=max(medians),
                             cv=(statistics.stdev(medians) / mean) if len(medians) > 1 and mean else None)
            out.append(entry)
    return out
