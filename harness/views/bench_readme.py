"""``harness.bench readme``: the README's benchmark section, generated from committed results.

Everything between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` is replaced; every
number comes from ``bench.csv`` / ``bench_meta.json`` in the results folder."""

from __future__ import annotations

import os
from pathlib import Path

from harness.bench.slices import headline, slices
from harness.bench.sweep import STREAM, sized_rows
from harness.errors import CorruptResults, HarnessError
from harness.results import read_json
from harness.schema import read_bench_csv
from harness.views import bench, formats, tables
from harness.views.readme import replace_section

# The README sections (harness/readme.py markers): the CPU one, and the GPU profile's
# (python -m harness.bench readme --profile gpu --out <its folder>).
SECTION, GPU_SECTION = "bench", "bench-gpu"


def _headline_table(rows: list[dict]) -> tuple[str, str] | None:
    """float32 forward, uniform ids, smallest width: adapters x vocabulary, median per call."""
    chosen = [p for p in headline(slices(rows), "float32", "uniform")
              if (p.key["device"], p.key["pass"], p.key["dtype"], p.key["distribution"]) ==
              ("cpu", "forward", "float32", "uniform") and p.key["dim"] is not None]
    if not chosen:
        return None
    piece = min(chosen, key=lambda p: p.key["dim"])
    times = piece.frame(lambda r: formats.fmt_time(r["median_s"]) if r["status"] == "ok" else "–")
    extra = f", {piece.extra_dimensions()}" if piece.extra_dimensions() else ""
    title = (f"Median time per call, float32 forward, uniform int32 ids, N={piece.key['n_ids']}, "
             f"D={piece.key['dim']}{extra} ('–': skipped):")
    return title, tables.markdown(times, index="adapter", column_name=lambda v: f"V={v}")


def _crossover_table(meta: dict) -> str | None:
    entries = [e for e in meta.get("crossover", []) if e["device"] == "cpu" and e["dtype"] == "float32"
               and e["distribution"] == "uniform"]
    if not entries:
        return None
    dims = sorted({e["dim"] for e in entries})
    keys = sorted({(e["framework"], e["pass"]) for e in entries})
    verdict = {(e["framework"], e["pass"], e["dim"]): e["verdict"] for e in entries}
    body = [[fw, p] + [verdict.get((fw, p, d), "") for d in dims] for fw, p in keys]
    return tables.markdown_rows(["framework", "pass"] + [f"D={d}" for d in dims], body)


def _best_gather(rows: list[dict], meta: dict) -> str | None:
    """Forward with uniform ids only: there every useful byte is really moved (sparse gradients
    may alias dY, and repeated ids hit the cache)."""
    measured = [r for r in rows if r["device"] == "cpu" and r["variant"] == "gather" and r["status"] == "ok"
                and r["pct_copy_bw"] is not None and r["pass"] == "forward"
                and r["distribution"] in ("uniform", STREAM)]
    cold = [r for r in measured if r["fits_in_cache"] == "no" and r["pct_copy_bw"] <= 100]
    pool = cold or measured
    if not pool:
        return None
    best = max(pool, key=lambda r: r["pct_copy_bw"])
    where = ("cold forward passes (rows and output beyond the L3, from DRAM)" if cold else
             "forward passes (none was cold: every row's working set fit the L3)")
    run = meta.get("copy_denominator") or {}
    single = (meta.get("adapters") or {}).get(best["adapter"], {}).get("single_threaded")
    copy = (run.get("single_thread_gbps") if single else run.get("copy_gbps")) or \
        (meta.get("copy_bandwidth_gbps") or {}).get(best["part"])
    caveat = "" if cold else (" Hot: its rows and output stay in the L3 between calls, so this is a speed, "
                              "not a share of the memory bandwidth.")
    return (f"Best gather over {where}: **{best['adapter']}** reaches {formats.fmt_num(best['gbps'])} GB/s, "
            f"**{formats.fmt_share(best['pct_copy_bw'])} %** of the {formats.fmt_num(copy)} GB/s "
            f"{'single-thread ' if single else ''}copy bandwidth of the run ({best['pass']}, {best['dtype']}, "
            f"V={best['vocab']}, D={best['dim']}, {best['distribution']} ids)." + caveat)


def _bag_lines(rows: list[dict]) -> list[str]:
    """The forward bags by pooling factor (BENCH.md has both passes and every row)."""
    table = bench.bag_table([r for r in rows if r["pass"] == "forward"])
    if not table:
        return []
    return ["Bags (segment reductions): sum bags of L ids, the gather form beside its multi-hot twin "
            "(N rows read, N / L written):", "", table, ""]


def render(rows: list[dict], meta: dict, out: Path, readme: Path) -> str:
    bags = _bag_lines(rows)
    rows = sized_rows(rows)
    m = meta["machine"]
    git = (meta.get("git") or {}).get("commit") or "unknown"
    base = Path(os.path.relpath(Path(out).resolve(), Path(readme).resolve().parent)).as_posix()
    lines = [f"### Benchmarks on {m.get('cpu_model')} ({m.get('cpu_affinity')} cores, `{meta['machine_id']}`)", "",
             f"_Generated by `python -m harness.bench readme` from `{base}/bench.csv` (profile "
             f"{meta['profile']}, commit {git[:10]}); do not edit by hand. Method and all rows: "
             f"[{base}/BENCH.md]({base}/BENCH.md)._", ""]
    cost = bench.run_cost(meta)
    if cost and cost[0]:
        lines += [f"The run took {bench.run_cost_text(cost)}.", ""]
    headline = _headline_table(rows)
    if headline:
        lines += [headline[0], "", headline[1], ""]
    cross = _crossover_table(meta)
    lines += ["Largest vocabulary at which one-hot @ W is faster than the framework's gather on this CPU "
              "(float32, uniform ids; the whole 95 % interval over the timed rounds above 1):", "",
              cross or "No one-hot/gather pair was measured.", ""]
    best = _best_gather(rows, meta)
    if best:
        lines += [best, ""]
    lines += bags
    if not meta.get("gpu_measured"):  # GPU machines get a section of their own (render_gpu)
        lines += ["No GPU here: the GPU figures are in the section for a GPU machine (`--profile gpu`).", ""]
    lines += [f"![one-hot / gather time ratio vs vocabulary]({base}/plots/crossover.png)"]
    return "\n".join(lines)


def _gpu_conformance(conformance_json: Path) -> str | None:
    """The GPU adapters' line of the conformance run committed beside the GPU benchmarks."""
    try:
        doc = read_json(conformance_json)
    except (CorruptResults, FileNotFoundError):
        return None
    adapters = [a for a in doc.get("adapters", []) if str(a.get("device") or "cpu") != "cpu"
                and not a.get("skip_reason")]
    if not adapters:
        return None
    body = []
    for a in adapters:
        counts = {k: sum(1 for c in a["checks"] if c["status"] == k)
                  for k in ("passed", "failed", "xfailed", "skipped")}
        o = a.get("observed", {})
        body.append([a["id"], counts["passed"], counts["failed"], counts["xfailed"], counts["skipped"],
                     o.get("negative_index", "-"), o.get("out_of_range", "-")])
    return (f"Conformance of the GPU adapters on this machine (Hypothesis profile `{doc.get('hypothesis_profile')}`; "
            "bad ids probed in a child process, so a device-side assert is observed as `raise`):\n\n"
            + tables.markdown_rows(["adapter", "passed", "failed", "xfail", "skipped", "id -1", "id >= vocab"], body))


def render_gpu(rows: list[dict], meta: dict, out: Path, readme: Path) -> str:
    """The README's GPU section: conformance of the CUDA adapters, launch floor, bandwidth regime,
    crossover and the cost of the backward pass, all from the committed files."""
    from harness.views import regimes

    m = meta["machine"]
    git = (meta.get("git") or {}).get("commit") or "unknown"
    base = Path(os.path.relpath(Path(out).resolve(), Path(readme).resolve().parent)).as_posix()
    name = regimes.device_copy(meta)[1] or "unknown GPU"
    title = f"### On a GPU: {name} (host {m.get('cpu_model')}, `{meta['machine_id']}`)"
    lines = [title, "",
             f"_Generated by `python -m harness.bench readme --profile gpu` from `{base}/bench.csv` (profile "
             f"{meta['profile']}, commit {git[:10]}) and the conformance results beside it; do not edit by hand. "
             f"Method and all rows: [{base}/BENCH.md]({base}/BENCH.md)._", ""]
    conformance = _gpu_conformance(Path(out).parent / "conformance.json")
    if conformance:
        lines += [conformance, ""]
    floors = [r for r in rows if r["device"] != "cpu"]
    floor = regimes.floor_table(floors, measured_only=True)
    if floor:
        lines += ["Launch floor (one id from a 2 x 1 table), median per call:", "", floor, ""]
    regime = regimes.bandwidth_rows(rows)
    shares = regimes.share_table(regime)
    if shares:
        lines += ["Share of the copy bandwidth measured in the same process / of the datasheet peak, "
                  "float32 forward, uniform ids over a 1M-row table, largest batch per width:", "", shares, ""]
    verdict = regimes.closest_to_limit(regime)
    if verdict:
        lines += [verdict, ""]
    cross = [e for e in meta.get("crossover", []) if e["device"] != "cpu" and e["dtype"] == "float32"]
    if cross:
        lines += ["Largest vocabulary at which one-hot @ W is faster than the gather on this GPU (float32, "
                  "uniform ids; where the timed rounds give an interval, the whole 95 % interval):", "",
                  tables.markdown_rows(["framework", "pass", "D", "N ids", "crossover V"],
                                  [[e["framework"], e["pass"], e["dim"], e["n_ids"], e["verdict"]] for e in cross]), ""]
    swept = sorted({r["n_ids"] for r in regime})
    backward = regimes.backward_table([r for r in rows if r["n_ids"] in (swept[:1] + swept[-1:])]) if swept else None
    if backward:
        lines += ["Forward+backward against forward (float32, uniform ids; why: BENCH.md):", "", backward, ""]
    lines += _bag_lines([r for r in rows if r["device"] != "cpu"])
    return "\n".join(lines).rstrip()


def update_readme(out: Path, readme: Path) -> str:
    out, readme = Path(out), Path(readme)
    if not readme.is_file():
        raise HarnessError(f"{readme}: not found; pass --readme PATH to the README to update")
    csv_path = out / "bench.csv"
    try:
        rows = read_bench_csv(csv_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptResults(f"{csv_path}: missing; run 'python -m harness.bench finalize --out {out}'") from None
    except ValueError as exc:
        raise CorruptResults(f"{csv_path}: {exc}") from None
    meta = read_json(out / "bench_meta.json")
    gpu = meta.get("profile") == "gpu"
    section = (render_gpu if gpu else render)(rows, meta, out, readme)
    replace_section(readme, GPU_SECTION if gpu else SECTION, section)
    return section
