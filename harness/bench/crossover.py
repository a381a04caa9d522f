"""Where one-hot @ W stops being competitive with the gather, per framework and device.

For each one-hot adapter and its gather twin (same framework and device), in every series
(dtype, pass, dim, distribution, N) both measured: the crossover is the largest vocabulary
at which the one-hot median is at most the gather median. "never in the measured range"
when one-hot is slower at every common vocabulary; ">= V" when it still wins at the largest
vocabulary measured for both (bigger one-hot cases were skipped or not in the sweep).
"""

from __future__ import annotations

from collections import defaultdict

SERIES = ("device", "dtype", "pass", "dim", "distribution", "n_ids")


def crossover_point(onehot: dict[int, float], gather: dict[int, float]) -> dict:
    """Compare median seconds by vocabulary; see the module docstring for the verdicts."""
    common = sorted(set(onehot) & set(gather))
    if not common:
        return {"crossover_vocab": None, "verdict": "no vocabulary measured for both",
                "measured_from": None, "measured_to": None, "monotonic": None}
    wins = [v for v in common if onehot[v] <= gather[v]]
    out = {"measured_from": common[0], "measured_to": common[-1], "onehot_wins_at": wins,
           "ratio_at_smallest": gather[common[0]] / onehot[common[0]] if onehot[common[0]] else None}
    if not wins:
        out.update(crossover_vocab=None, monotonic=True,
                   verdict=f"never in the measured range (V={common[0]}..{common[-1]})")
        return out
    largest = max(wins)
    # Monotonic: one-hot wins at every vocabulary up to the crossover and loses after it.
    out["monotonic"] = wins == [v for v in common if v <= largest]
    out["crossover_vocab"] = largest
    if largest == common[-1]:
        out["verdict"] = f">= {largest} (one-hot still as fast at the largest vocabulary measured for both)"
    else:
        out["verdict"] = str(largest) + ("" if out["monotonic"] else " (not monotonic: see the table)")
    return out


def summarize(rows: list[dict], adapters: dict[str, dict]) -> list[dict]:
    """One entry per (one-hot adapter, series) that has a measured gather twin."""
    medians: dict[tuple, dict[int, float]] = defaultdict(dict)
    for r in rows:
        if r["status"] == "ok" and r["median_s"]:
            medians[(r["adapter"], *(r[k] for k in SERIES))][int(r["vocab"])] = float(r["median_s"])
    entries = []
    for (adapter_id, *series), onehot in sorted(medians.items(), key=lambda kv: [str(x) for x in kv[0]]):
        info = adapters.get(adapter_id, {})
        twin = info.get("gather_twin")
        if info.get("variant") != "onehot" or not twin:
            continue
        gather = medians.get((twin, *series))
        if not gather:
            continue
        entry = {"framework": info.get("framework_label") or info.get("framework"),
                 "onehot_adapter": adapter_id, "gather_adapter": twin, **dict(zip(SERIES, series, strict=True))}
        entry.update(crossover_point(onehot, gather))
        entries.append(entry)
    return entries


def headline(entries: list[dict], dtype: str = "float32", pass_: str = "forward",
             distribution: str = "uniform") -> list[dict]:
    """The entries most readers want: float32 forward with uniform ids."""
    return [e for e in entries
            if e["dtype"] == dtype and e["pass"] == pass_ and e["distribution"] == distribution]
