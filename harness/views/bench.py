"""BENCH.md from the rows of bench.csv, the crossover summary and the run metadata."""

from __future__ import annotations

import datetime as _dt
from collections import defaultdict

from harness.bench import timing
from harness.bench.metrics import BYTES_FORMULA_MD
from harness.bench.rows import COPY_AGREEMENT
from harness.bench.slices import Slice, slices
from harness.bench.sweep import PASSES, bag_rows, sized_rows
from harness.views import mdtext, regimes, tables
from harness.views.formats import BEYOND, fmt_bytes, fmt_num, fmt_share, fmt_time

GPU_NOT_MEASURED = ("GPU figures are not yet measured: no CUDA device was visible to this run "
                    "(re-run `nox -s bench` on a machine with a GPU).")

# A CPU row above the copy bandwidth is hot (harness.views.formats.BEYOND marks it).
CPU_BEYOND_NOTE = (f"{BEYOND} above the copy bandwidth: the row is hot (its rows and output stay in cache "
                   "between calls, see `cache`), so its useful bytes were not all moved from memory; read it "
                   "as a speed, not as a share of the memory bandwidth. The cold (`uniform-stream`) rows are the "
                   "ones that come from DRAM.")


# --- BENCH.md sections ---------------------------------------------------------------------------
def _machine_section(meta: dict) -> str:
    m = meta["machine"]
    gpus = m.get("gpus") or []
    gpu = "; ".join(f"{g.get('name')} ({g.get('memory')}, driver {g.get('driver')})" for g in gpus) or "none visible"
    git = m.get("git") or {}
    commit = (git.get("commit") or "unknown") + (" (uncommitted changes)" if git.get("dirty") else "")
    body = [
        ["Machine id", m.get("machine_id")],
        ["CPU", f"{m.get('cpu_model')}: {m.get('cpu_count')} logical cores, "
                f"{m.get('cpu_affinity')} in the affinity mask"],
        ["Memory", fmt_bytes(m.get("memory_bytes"))],
        ["Caches", f"L2 {fmt_bytes(m.get('l2_cache_bytes'))} (per core), L3 {fmt_bytes(m.get('l3_cache_bytes'))}"],
        ["GPU", gpu],
        ["OS / Python", f"{m.get('os')} / {m.get('python')}"],
        ["Git commit", commit],
        ["Profile / run", f"{meta['profile']} / {meta['run_id']}"],
    ]
    return "## Machine\n\n" + tables.markdown_rows(["", ""], body)


def _threads_text(frameworks) -> str:
    if not isinstance(frameworks, dict):
        return ""
    parts = []
    for name, info in frameworks.items():
        if isinstance(info, dict):
            parts.append(f"{name}: " + ", ".join(f"{k}={v}" for k, v in info.items() if k != "xla_flags"))
        elif isinstance(info, list):
            parts.append(f"{name}: " + ", ".join(f"{i.get('library')}={i.get('num_threads')}" for i in info))
        else:
            parts.append(f"{name}: {info}")
    return "; ".join(parts)


def _parts_section(meta: dict) -> str:
    body = []
    for part, p in meta["parts"].items():
        bw = p.get("copy_bandwidth") or {}
        threads = p.get("threads") or {}
        gpu = p.get("device_copy_bandwidth") or {}
        body.append([part, threads.get("requested"), threads.get("affinity"), fmt_num(bw.get("gbps")),
                     fmt_num(bw.get("single_thread_gbps")), fmt_bytes(bw.get("buffer_bytes")),
                     fmt_num(gpu.get("gbps")) or gpu.get("error", ""),
                     fmt_num((p.get("gemm_flops_per_s") or 0) / 1e9 or None), _load_text(p.get("load_average")),
                     "" if p.get("busy_share") is None else f"{100 * p['busy_share']:.0f} %",
                     _timed_share(p),
                     _threads_text(threads.get("frameworks"))])
    env = next((p.get("threads", {}).get("env") for p in meta["parts"].values()), {}) or {}
    text = ("## Threads and copy bandwidth\n\nEach part is a separate process started with the same "
            "thread environment before any framework import: "
            + ", ".join(f"`{k}={v}`" for k, v in env.items())
            + ". Copy bandwidth is measured in that process (NumPy copy of a buffer beyond the L3, "
              "split over the same thread count, 2 x size bytes, median of 10).\n\n")
    run = meta.get("copy_denominator") or {}
    if run.get("copy_gbps"):
        text += (f"**One denominator for the run**: `pct_copy_bw` of every CPU row relates to the median of the "
                 f"parts' probes, {fmt_num(run['copy_gbps'])} GB/s"
                 + (f" ({fmt_num(run['single_thread_gbps'])} GB/s with one thread, the denominator of "
                    f"single-threaded gathers such as NumPy's)" if run.get("single_thread_gbps") else "")
                 + (f"; GPU rows to {fmt_num(run['device_gbps'])} GB/s" if run.get("device_gbps") else "")
                 + f". A part whose own probe differs by more than {COPY_AGREEMENT:.0%} is flagged above.\n\n")
    text += ("Load average (1 min) at the start and end of each part, and the share of its cores other "
             "processes kept busy while it sat idle for half a second before its first case, show whether "
             "other work shared the cores (above 25 % the part is flagged at the top).\n\n")
    return text + tables.markdown_rows(["part", "threads", "affinity", "copy GB/s", "copy GB/s (1 thread)", "buffer",
                            "GPU copy GB/s", "GEMM GFLOP/s", "load avg", "others' CPU at start",
                            "wall / in timed rounds", "framework threads"], body)


def part_wall_s(part: dict) -> float | None:
    try:
        start, end = (_dt.datetime.fromisoformat(part[k]) for k in ("started", "finished"))
    except (KeyError, TypeError, ValueError):
        return None
    return (end - start).total_seconds()


def run_cost(meta: dict) -> tuple[float, float, float] | None:
    """(wall seconds of the run's parts, seconds inside the cases' timed rounds, seconds inside the
    self-checks' bare timeit loops), from the part records of the run."""
    parts = [p for p in meta["parts"].values() if p.get("run_id") == meta.get("run_id")]
    walls, timed = [part_wall_s(p) for p in parts], [p.get("timed_s") for p in parts]
    if not walls or None in walls or None in timed:
        return None
    return sum(walls), sum(timed), sum(p.get("self_check_timeit_s") or 0.0 for p in parts)


def run_cost_text(cost: tuple[float, float, float]) -> str:
    wall, timed, reference = cost
    return (f"{wall:.0f} s of wall time in its parts: {100 * timed / wall:.0f} % inside the timed rounds and "
            f"{100 * reference / wall:.0f} % inside the self-checks' bare timeit loops")


def _timed_share(part: dict) -> str:
    wall = part_wall_s(part)
    if wall is None or part.get("timed_s") is None:
        return ""
    return f"{wall:.0f} s / {100 * part['timed_s'] / wall:.0f} %" if wall else ""


def _load_text(load) -> str:
    if not isinstance(load, dict) or "start" not in load:
        return ""
    return f"{load['start'][0]:.2f} → {load.get('end', [float('nan')])[0]:.2f}"


def _adapters_section(meta: dict) -> str:
    body = []
    for adapter_id, a in sorted(meta["adapters"].items()):
        if a.get("skip_reason") and "variant" not in a:
            body.append([adapter_id, a.get("part", ""), "", "", f"unavailable: {a['skip_reason']}"])
            continue
        versions = ", ".join(f"{k} {v}" for k, v in (a.get("versions") or {}).items())
        runtime = ", ".join(f"{k}={v}" for k, v in (a.get("runtime") or {}).items())
        precision = (a.get("declared") or {}).get("matmul_precision", "")
        body.append([adapter_id, a.get("part", ""), versions, a.get("gradient", ""),
                     f"declared matmul {precision}; {runtime}" if runtime else f"declared matmul {precision}"])
    return ("## Frameworks, versions and precision\n\n"
            + tables.markdown_rows(["adapter", "part", "versions", "gradient", "precision and runtime settings"], body))


METHOD = """\
## Method

- **Inputs**: the same NumPy-generated ids, table and upstream gradient (fixed seeds) for every
  framework, converted to each framework's device values *before* timing. Ids are int32
  wherever the adapter accepts them (int64 otherwise: column `index_dtype`). `uniform` ids are
  uniform over [0, V); `zipf` ids follow a finite Zipf law (alpha 1.1 over the V ranks, exact
  inverse-CDF sampling, ranks scattered by a fixed permutation); `dup_rate` = 1 - unique/N.
  `uniform` and `zipf` repeat one batch every call; `uniform-stream` gives every call a fresh
  uniform batch, rotating through enough batches that the rows they touch exceed 4 x the
  last-level cache.
- **Hot and cold** (`fits_in_cache`, the `cache` column of the full tables): what a timing loop keeps touching, its
  distinct rows over every batch it rotates through plus one call's output and ids, against this
  machine's L2 (per core) and L3 (GPU rows: the GPU's L2). `L2`/`L3`: hot, the rows come from
  cache and the figure is a speed; `no`: cold, they come from DRAM and the share of the copy
  bandwidth means what it says. A share above 100 % is marked † and is never a bandwidth.
  GPU timings do not flush the L2 between calls. Cold forward rows write into one output
  buffer the harness allocated once where the framework takes one (`output` = `preallocated`:
  NumPy `take(out=)`, torch `index_select(out=)`), so they time rows read from DRAM, not the page
  faults of a fresh output; JAX and TensorFlow arrays are immutable (`per call`).
- **Order**: within a part, the cases run table by table (each adapter prepares a table once;
  vocabularies grow, which the one-hot time estimate needs), and inside a table every
  (adapter, case) pair runs in random order (a randomised block design; the seed is in the part
  record), so adapters compared on one case are measured side by side in an order drift cannot favour.
- **Timing**: the first call (including jit compilation or tracing: `jax.jit`, `tf.function`)
  is timed on its own (`compile_s`), then warm-up calls{warm_up}, then `benchmark.pedantic` with enough
  iterations per round that a round lasts at least {min_round} and as many rounds as the
  profile's per-case budget allows ({min_rounds}..{max_rounds}). Each CPU call ends with the
  framework's own synchronisation (`block_until_ready` for JAX), inside the timed region.
  `median_s` and `iqr_s` are per call. Compiled frameworks are timed compiled. GPU rows:
  `median_s` is device time from CUDA events around K calls, `wall_median_s` the wall time
  of K calls plus one synchronisation, divided by K. `forward_backward` times the adapter's
  `gradient`, which returns dW only: a compiled framework (tf.function, jax.jit) drops the
  forward output nobody uses, as it would in a model whose loss ignored the embedding; it is
  charged the backward's bytes alone (below).
- **Launch floor**: each adapter also times one id from a 2 x 1 table (its own section); rows
  within a few floors of it measure per-call overhead (dispatch, launch), not the embedding.
- **Bandwidth**: useful bytes (below), not measured DRAM traffic, and a sparse gradient (torch
  `sparse=True`, TensorFlow IndexedSlices) may alias dY instead of copying it. `pct_copy_bw`
  relates GB/s to one copy bandwidth per run: the median over the parts' probes (each the median
  of 10 copies, counted read + write as STREAM's Copy kernel does, https://www.cs.virginia.edu/stream/),
  the single-thread figure for single-threaded gathers (NumPy); GPU rows the device copy, measured
  by the first registered framework whose runtime can (for the built-ins torch's `copy_` of a 1 GiB
  buffer timed by CUDA events; each part records its method). A part whose own probe differs from the run's
  by more than 10 %, or that started on cores other processes kept busy, is flagged at the top.
  GPU rows also carry `pct_peak_bw`, the share of the GPU's datasheet bandwidth
  (harness/bench/datasheets.py names the datasheets).
- **peak_mem_bytes**: CPU: extra resident memory during one call, the RSS high-water mark
  (reset via /proc/self/clear_refs) minus the RSS before the call, after returning freed heap
  memory to the OS; GPU: peak allocated device memory minus allocated before the call (torch
  and TensorFlow allocators; empty where the framework has no resettable peak, e.g. JAX).
- **Skips**: a one-hot case is skipped when the N x V one-hot matrix and its dtype copies
  would exceed the memory budget ({budget}), or when its estimated time per call (FLOPs at the
  measured GEMM rate, or extrapolated from the previous vocabulary) exceeds {max_call} s; any
  case whose second (post-compile) call takes longer than that is skipped too. The reason is
  in the row's `skip_reason`.

### Bytes formula

{bytes}"""


def _pivot(piece: Slice) -> str | None:
    """One slice as vocabulary down, adapters across: the median time per call."""
    if not piece.labels or len(piece.vocabs) < 2:  # one vocabulary: the GPU bandwidth tables show it
        return None
    times = piece.frame(lambda r: fmt_time(r["median_s"]) if r["status"] == "ok" else r["status"])
    k = piece.key
    extra = f", {piece.extra_dimensions()}" if piece.extra_dimensions() else ""
    return (f"**{k['pass']}, {k['dtype']}, D={k['dim']}, {k['distribution']} ids, N={k['n_ids']}{extra}: median time "
            f"per call**\n\n" + tables.markdown(times.T, index="V"))


def _full_table(rows: list[dict]) -> str:
    header = ["adapter", "dtype", "ids", "pass", "V", "D", "N", "dist", "dup", "median", "IQR", "rounds",
              "Mlookups/s", "GB/s", "% copy", "% peak", "GFLOP/s", "peak mem", "table", "cache", "first call",
              "wall", "status"]
    body = []
    for r in rows:
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {r['skip_reason'] or ''}"
        body.append([r["adapter"], r["dtype"], r["index_dtype"] or "", r["pass"], r["vocab"], r["dim"], r["n_ids"],
                     r["distribution"], fmt_num(r["dup_rate"], 2), fmt_time(r["median_s"]),
                     fmt_time(r["iqr_s"]), r["rounds"] if r["rounds"] is not None else "",
                     fmt_num(r["lookups_per_s"] / 1e6 if r["lookups_per_s"] else None),
                     fmt_num(r["gbps"]), fmt_share(r["pct_copy_bw"]), fmt_num(r.get("pct_peak_bw")),
                     fmt_num(r["gflops"]),
                     fmt_bytes(r["peak_mem_bytes"]), fmt_bytes(r["table_bytes"]), r["fits_in_cache"] or "",
                     fmt_time(r["compile_s"]), fmt_time(r["wall_median_s"]), status])
    return tables.markdown_rows(header, body)


def device_section(rows: list[dict], device: str, title: str) -> str | None:
    if not any(r["device"] == device for r in rows) and device == "cpu":
        return None  # a GPU-only profile: no CPU adapter was selected
    chosen = [r for r in sized_rows(rows) if r["device"] == device]
    if not any(r["status"] == "ok" for r in chosen):
        text = f"## {title}\n\n" + (GPU_NOT_MEASURED if device == "cuda" else "No measured rows.")
        reasons = sorted({(r["adapter"], r["skip_reason"] or r["status"]) for r in chosen})
        if reasons:
            text += "\n\n" + "\n".join(f"- {a}: {why}" for a, why in reasons)
        return text
    out = [f"## {title}"]
    for piece in slices(chosen):
        if piece.key["dtype"] == "float32" and piece.key["distribution"] == "uniform" and \
                piece.key["dim"] is not None and piece.key["n_ids"] is not None:
            pivot = _pivot(piece)
            if pivot:
                out.append(pivot)
    full = _full_table(chosen)
    if BEYOND in full and device == "cpu":
        full += "\n\n" + CPU_BEYOND_NOTE
    out.append(f"<details><summary>All {len(chosen)} {device} rows</summary>\n\n" + full + "\n\n</details>")
    return "\n\n".join(out)


def bag_table(rows: list[dict]) -> str | None:
    """Bags (segment reductions) by pooling factor L: per device, pass, table and ids, each
    adapter's median time and GB/s (N rows read, N / L rows written), as FBGEMM's table-batched
    embedding benchmark reports them; the multi-hot twins beside the gathers."""
    chosen = [r for r in bag_rows(rows) if r["status"] == "ok"]
    if not chosen:
        return None
    groups = sorted({(r["device"], r["pass"], r["vocab"], r["dim"], r["n_ids"]) for r in chosen},
                    key=lambda g: (g[0], PASSES.index(g[1]), g[2], g[3], g[4]))
    out = []
    for device, pass_, vocab, dim, n_ids in groups:
        group = [r for r in chosen if (r["device"], r["pass"], r["vocab"], r["dim"], r["n_ids"])
                 == (device, pass_, vocab, dim, n_ids)]
        table = tables.spread(group, ["pooling"], "adapter",
                              lambda r: f"{fmt_time(r['median_s'])} ({fmt_num(r['gbps'])} GB/s)")
        table["pooling"] = [f"{pooling} ({n_ids // pooling} bags)" for pooling in table["pooling"]]
        out.append(f"**{device}, {pass_}, sum bags over a {vocab} x {dim} float32 table, N={n_ids} ids: median "
                   f"time per call (GB/s)**\n\n" + tables.markdown(table.rename(columns={"pooling": "L (bags)"})))
    return "\n\n".join(out)


def bag_section(rows: list[dict]) -> str | None:
    table = bag_table(rows)
    if table is None:
        return None
    return ("## Bags: pooling factor\n\nSum bags of L ids each (the pooling factor), N / L bags per call. GB/s "
            "counts the N rows read and the N / L rows written (see the bytes formula); a multi-hot row is "
            "charged the same bytes, so its GB/s compares with its gather's. Skipped and failed bag rows are in "
            "the full tables' source, bench.csv.\n\n" + table)


def crossover_section(entries: list[dict]) -> str:
    def interval(e):
        ci = e.get("ci_at_smallest")
        return f"{fmt_num(e.get('ratio_at_smallest'))} [{fmt_num(ci[0])}, {fmt_num(ci[1])}]" if ci else \
            fmt_num(e.get("ratio_at_smallest"))

    body = [[e["framework"], e["device"], e["dtype"], e["pass"], e["dim"], e.get("n_ids", ""), e["distribution"],
             e["verdict"], interval(e)] for e in entries]
    text = ("## Crossover: one-hot vs gather\n\nLargest vocabulary at which the one-hot variant is faster than "
            "its gather twin (same framework and device): at each vocabulary the gather/one-hot ratio of medians "
            "gets a 95 % bootstrap interval over the timed rounds, and one-hot wins only where the whole interval "
            "is above 1; where it straddles 1 the two are indistinguishable (listed). `gather/one-hot at smallest "
            "V` > 1 means one-hot is faster there; rows measured without rounds (smoke) compare medians only.\n\n")
    if not body:
        return text + "No one-hot/gather pair was measured in this run.\n\n![crossover](plots/crossover.png)"
    return text + tables.markdown_rows(["framework", "device", "dtype", "pass", "D", "N", "ids", "crossover V",
                            "gather/one-hot at smallest V"], body) + "\n\n![crossover](plots/crossover.png)"


def self_check_section(summary: list[dict]) -> str:
    if any(s.get("paired") for s in summary):
        how = ("taking turns with the harness's rounds: after each round, one block of as many calls, and the "
               "ratio is the median over the rounds of round / block, so a machine whose speed wanders moves "
               "both sides of a pair alike; the medians are shown beside it")
    else:  # a run from before the paired check
        how = ("run before and after the harness's rounds and pooled (so drift between the two does not pose "
               "as a harness error)")
    text = ("## Self-check of the method\n\nIn every part, NumPy's gather and each framework's CPU gather timed "
            "by the harness (the code path of every row) against a bare `timeit` loop of the same call and "
            f"synchronisation in the same process, {how}; NumPy's case is then repeated to show the "
            "run-to-run spread.\n\n")
    body = []
    for s in summary:
        if not s["timed"]:
            body.append([s["part"], s["case"], "not measured (smoke profile)", "", "", "", ""])
            continue
        body.append([s["part"], s["case"], fmt_time(s.get("harness_median_s")), fmt_time(s.get("timeit_median_s")),
                     fmt_num(s.get("ratio")),
                     f"{fmt_time(s.get('min_median_s'))} .. {fmt_time(s.get('max_median_s'))} ({s['repeats']} repeats)",
                     fmt_num(s.get("cv"), 2)])
    return text + tables.markdown_rows(["part", "case", "harness median", "timeit median", "ratio",
                            "medians min .. max", "CV"], body)


def notes_section(rows: list[dict], meta: dict) -> str:
    notes = []
    errors = [r for r in rows if r["status"] == "error"]
    if errors:
        notes.append(f"- **{len(errors)} errors**: " + "; ".join(
            mdtext.cell(f"{r['adapter']} {r['pass']} V={r['vocab']}: {r['skip_reason']}") for r in errors[:20]))
    reasons: dict[str, set] = defaultdict(set)
    for a_id, a in meta["adapters"].items():
        if a.get("skip_reason") and "variant" not in a:
            reasons[a["skip_reason"]].add(a_id)
    for reason, ids in reasons.items():
        notes.append(f"- Unavailable: {mdtext.cell(', '.join(sorted(ids)))}: {mdtext.cell(reason)}")
    for part, entry in meta.get("failed_parts", {}).items():
        notes.append(f"- Part **{mdtext.cell(part)}** FAILED: {mdtext.cell(entry)}")
    if meta.get("kept_rows"):
        notes.append(f"- {meta['kept_rows']} rows were not measured by this run and are kept from earlier "
                     f"runs ({', '.join(meta.get('kept_from_runs', []))}); the `run_id` column says which.")
    if meta.get("ignored_files"):
        notes.append("- Not from this run, ignored: " + ", ".join(meta["ignored_files"]))
    untimed = [part for part, p in meta["parts"].items() if not p.get("timed")]
    if untimed:
        notes.append(f"- Untimed ({', '.join(untimed)}): every benchmark ran once without "
                     "pytest-benchmark timing (smoke); the times are single calls, not measurements.")
    return "## Notes\n\n" + ("\n".join(notes) if notes else "None.")


def warm_up_text(profile: dict) -> str:
    """How the run warmed each case up; runs from before the settling warm-up say nothing more."""
    if "warmup_share" not in profile:
        return ""
    return (f" until they stop getting faster (the median of the last {timing.SETTLE_WINDOW} calls within "
            f"{100 * timing.SETTLE_GAIN:.0f} % of the {timing.SETTLE_WINDOW} before; at least "
            f"{fmt_time(profile.get('warmup_s'))}, at most {100 * profile['warmup_share']:.0f} % of the case's "
            "timed budget: a framework's first calls on a fresh table run several times slower for a few calls)")


def bench_md(rows: list[dict], meta: dict, entries: list[dict]) -> str:
    profile = meta.get("profile_settings") or {}
    method = METHOD.format(
        warm_up=warm_up_text(profile),
        min_round=fmt_time(profile.get("min_round_s")), min_rounds=profile.get("min_rounds"),
        max_rounds=profile.get("max_rounds"), bytes=BYTES_FORMULA_MD,
        budget=fmt_bytes(meta.get("onehot_mem_budget")), max_call=profile.get("max_call_s"))
    failed = meta.get("failed_parts") or {}
    status = (f"**{len(failed)} part(s) FAILED**: " + "; ".join(mdtext.cell(f"{p}: {m}") for p, m in failed.items())
              if failed else f"Status: every part of run `{meta['run_id']}` completed.")
    cost = run_cost(meta)
    if cost and cost[0]:
        status += (f" The run took {run_cost_text(cost)} (the rest: imports, inputs, first calls, warm-up, "
                   "probes).")
    warnings = [f"copy bandwidth of part {p} disagrees with the run's: {why}"
                for p, why in (meta.get("copy_disagreements") or {}).items()] + list(meta.get("load_warnings") or [])
    if warnings:
        status += "\n\n> [!WARNING]\n" + "\n".join(f"> - {mdtext.cell(w)}" for w in warnings)
    sections = [
        f"# Embedding benchmarks: {meta['machine']['machine_id']}\n\n"
        f"Generated by `python -m harness.bench finalize` on {meta['finalized']} from run "
        f"`{meta['run_id']}` (profile **{meta['profile']}**). Raw data: `bench.csv`, "
        f"`raw/<run-id>/bench-<part>.json` (pytest-benchmark JSON with the harness record), "
        f"`bench_meta.json`.\n\n{status}",
        _machine_section(meta), _parts_section(meta), _adapters_section(meta), method,
        regimes.floor_section(rows),
        device_section(rows, "cpu", "CPU results"), regimes.bandwidth_section(rows, meta),
        regimes.backward_section(rows), device_section(rows, "cuda", "GPU results"), bag_section(rows),
        crossover_section(entries), self_check_section(meta["self_check"]), notes_section(rows, meta),
    ]
    return "\n\n".join(s for s in sections if s) + "\n"
