"""Where one-hot @ W stops being competitive with the gather, per framework and device.

For each one-hot adapter and its gather twin (same framework and device), in every series
(dtype, pass, dim, distribution, N) both measured: the crossover is the largest vocabulary
at which the one-hot median is at most the gather median. "never in the measured range"
when one-hot is slower at every common vocabulary; ">= V" when it still wins at the largest
vocabulary measured for both (bigger one-hot cases were skipped or not in the sweep).

With the per-round samples of both (every timed run records them), each vocabulary gets a 95 %
bootstrap interval of the gather/one-hot ratio of medians (rounds resampled with replacement):
one-hot wins there only when the whole interval is above 1, loses when it is below 1, and the
two are "indistinguishable" when it straddles 1: a 1.03 ratio inside two noisy distributions
decides nothing.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from harness.bench.slices import SLICE_COLUMNS

BOOTSTRAP_DRAWS = 2000
BOOTSTRAP_SEED = 20240611


def ratio_interval(gather: list[float], onehot: list[float], level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of median(gather) / median(onehot) over the rounds of each."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    g, o = np.asarray(gather, dtype=float), np.asarray(onehot, dtype=float)
    g_med = np.median(g[rng.integers(0, g.size, (BOOTSTRAP_DRAWS, g.size))], axis=1)
    o_med = np.median(o[rng.integers(0, o.size, (BOOTSTRAP_DRAWS, o.size))], axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(g_med / o_med, [tail, 100 - tail])
    return float(low), float(high)


def compare_at(gather_s: float, onehot_s: float, gather_samples=None, onehot_samples=None) -> dict:
    """One vocabulary: who wins, with the interval when both have samples."""
    if gather_samples and onehot_samples and len(gather_samples) > 1 and len(onehot_samples) > 1:
        low, high = ratio_interval(gather_samples, onehot_samples)
        verdict = "one-hot" if low > 1 else "gather" if high < 1 else "indistinguishable"
        return {"ratio": gather_s / onehot_s, "ci": [low, high], "faster": verdict}
    return {"ratio": gather_s / onehot_s, "ci": None, "faster": "one-hot" if onehot_s <= gather_s else "gather"}

# A series: everything that names a measurement but the adapter, its index dtype and the
# vocabulary (the slice columns of harness/bench/slices.py), so that a dimension added to the
# key splits the series instead of mixing its rows. Bags are left out here (no pooling).
SERIES = ("device", "dtype", "pass", "dim", "distribution", "n_ids")
SERIES += tuple(c for c in SLICE_COLUMNS if c not in SERIES and c != "pooling")


def crossover_point(onehot: dict[int, float], gather: dict[int, float], onehot_samples: dict | None = None,
                    gather_samples: dict | None = None) -> dict:
    """Compare median seconds by vocabulary; see the module docstring for the verdicts."""
    common = sorted(set(onehot) & set(gather))
    if not common:
        return {"crossover_vocab": None, "verdict": "no vocabulary measured for both",
                "measured_from": None, "measured_to": None, "monotonic": None}
    per_vocab = {v: compare_at(gather[v], onehot[v], (gather_samples or {}).get(v), (onehot_samples or {}).get(v))
                 for v in common}
    wins = [v for v in common if per_vocab[v]["faster"] == "one-hot"]
    unclear = [v for v in common if per_vocab[v]["faster"] == "indistinguishable"]
    out = {"measured_from": common[0], "measured_to": common[-1], "onehot_wins_at": wins,
           "indistinguishable_at": unclear, "per_vocab": {str(v): per_vocab[v] for v in common},
           "ratio_at_smallest": per_vocab[common[0]]["ratio"],
           "ci_at_smallest": per_vocab[common[0]]["ci"]}
    unclear_text = f"; indistinguishable at V={', '.join(map(str, unclear))}" if unclear else ""
    if not wins:
        out.update(crossover_vocab=None, monotonic=True,
                   verdict=f"never in the measured range (V={common[0]}..{common[-1]}){unclear_text}")
        return out
    largest = max(wins)
    # Monotonic: one-hot wins at every vocabulary up to the crossover and loses after it.
    out["monotonic"] = wins == [v for v in common if v <= largest]
    out["crossover_vocab"] = largest
    if largest == common[-1]:
        out["verdict"] = f">= {largest} (one-hot still as fast at the largest vocabulary measured for both)"
    else:
        out["verdict"] = str(largest) + ("" if out["monotonic"] else " (not monotonic: see the table)")
    out["verdict"] += unclear_text
    return out


def summarize(rows: list[dict], adapters: dict[str, dict]) -> list[dict]:
    """One entry per (one-hot adapter, series) that has a measured gather twin."""
    medians: dict[tuple, dict[int, float]] = defaultdict(dict)
    samples: dict[tuple, dict[int, list]] = defaultdict(dict)
    for r in rows:
        if r["status"] == "ok" and r["median_s"]:
            key = (r["adapter"], *(r[k] for k in SERIES))
            medians[key][int(r["vocab"])] = float(r["median_s"])
            if r.get("samples"):  # in memory only: bench.csv keeps the medians
                samples[key][int(r["vocab"])] = r["samples"]
    entries = []
    for (adapter_id, *series), onehot in sorted(medians.items(), key=lambda kv: [str(x) for x in kv[0]]):
        info = adapters.get(adapter_id, {})
        twin = info.get("gather_twin")
        if info.get("variant") != "onehot" or not twin:
            continue
        gather = medians.get((twin, *series))
        if not gather:
            continue
        label = info.get("framework_label") or info.get("framework")
        mode = info.get("mode") or "eager"  # a compiled pair is a row of its own: "torch compile"
        entry = {"framework": label if mode == "eager" else f"{label} {mode}",
                 "onehot_adapter": adapter_id, "gather_adapter": twin, **dict(zip(SERIES, series, strict=True))}
        entry.update(crossover_point(onehot, gather, samples.get((adapter_id, *series)),
                                     samples.get((twin, *series))))
        entries.append(entry)
    return entries


def headline(entries: list[dict], dtype: str = "float32", pass_: str = "forward",
             distribution: str = "uniform") -> list[dict]:
    """The entries most readers want: float32 forward with uniform ids."""
    return [e for e in entries
            if e["dtype"] == dtype and e["pass"] == pass_ and e["distribution"] == distribution]
