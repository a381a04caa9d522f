"""BENCH.md sections that say which regime a row measures: the launch floor (a call that moves
nothing), the bandwidth regime of large batches on a GPU (against the copy bandwidth measured
in the same process and the datasheet peak), and what forward+backward costs over forward.

Every figure comes from the rows; the text around them only says how to read them.
"""

from __future__ import annotations

from harness.bench import datasheets
from harness.bench.sweep import is_floor_row, sized_rows
from harness.views import tables
from harness.views.formats import BEYOND, fmt_bytes, fmt_num, fmt_time

FLOOR_TEXT = (
    "## Launch floor\n\nOne id looked up in a 2 x 1 table: the call moves a few bytes, so its time is the "
    "framework's fixed cost per call (Python dispatch, `jax.jit` / `tf.function` dispatch, kernel launch, "
    "synchronisation). A row whose median is within a few floors of its adapter's floor measures that cost, "
    "not the embedding; compare implementations only well above it. GPU floors are device time from events "
    "where the framework has them (torch), else wall time of pipelined calls.")

BACKWARD_TEXT = (
    "What forward+backward costs over the forward alone, at the widest sweep of ids. The dense gradient's "
    "backward is a scatter-add into a V x D zero-filled table: PyTorch's CUDA `embedding_dense_backward` "
    "sorts the ids (radix sort) and reduces each run of equal ids into its row, so its cost grows with the "
    "sort and with the zero-fill of all V rows, not only with the N rows read "
    "(aten/src/ATen/native/cuda/Embedding.cu in pytorch/pytorch); XLA lowers the gradient of a gather "
    "to a scatter-add, on a GPU with atomic adds where ids may repeat. A sparse gradient (torch "
    "`sparse=True`) skips the zero-fill and the reduction: it returns the N upstream rows and their ids.")


def floor_section(rows: list[dict]) -> str | None:
    table = floor_table(rows)
    return FLOOR_TEXT + "\n\n" + table if table else None


def floor_table(rows: list[dict], measured_only: bool = False) -> str | None:
    floors = [r for r in rows if is_floor_row(r) and (r["status"] == "ok" or not measured_only)]
    if not floors:
        return None
    table = tables.spread(floors, ["device", "adapter"], "pass",
                          lambda r: fmt_time(r["median_s"]) if r["status"] == "ok" else r["status"],
                          columns=["forward", "forward_backward"])
    return tables.markdown(table[["adapter", "device", "forward", "forward_backward"]])


def _largest_vocab(rows: list[dict]) -> int | None:
    vocabs = [r["vocab"] for r in rows if r["vocab"]]
    return max(vocabs) if vocabs else None


def bandwidth_rows(rows: list[dict]) -> list[dict]:
    """GPU rows of the widest table, where the N x D sweep runs (the bandwidth regime)."""
    gpu = [r for r in sized_rows(rows) if r["device"] != "cpu"]
    vocab = _largest_vocab(gpu)
    series = [r for r in gpu if r["vocab"] == vocab and r["distribution"] == "uniform"]
    return series if len({r["n_ids"] for r in series}) > 1 else []


BEYOND_NOTE = (f"{BEYOND} above the copy bandwidth: the bytes the model charges were not all moved. torch's "
               "sparse gradient returns dY itself as its values (no copy), so its forward+backward costs "
               "about a forward; this is not a bandwidth.")


def _cell(r: dict) -> str:
    if r["status"] != "ok":
        return r["status"]
    pct = f"{fmt_num(r['pct_copy_bw'])} %" if r.get("pct_copy_bw") is not None else "?"
    peak = f" / {fmt_num(r['pct_peak_bw'])} %" if r.get("pct_peak_bw") is not None else ""
    beyond = f" {BEYOND}" if (r.get("pct_copy_bw") or 0) > 100 else ""
    return f"{fmt_num(r['gbps'])} GB/s ({pct}{peak}){beyond}"


def device_copy(meta: dict) -> tuple[list[float], str | None]:
    """The device copy bandwidths measured in the run's parts, and the GPU's name."""
    gbps = sorted((meta.get("device_copy_bandwidth_gbps") or {}).values())
    names = [(p.get("device_copy_bandwidth") or {}).get("name") for p in (meta.get("parts") or {}).values()]
    return gbps, next((n for n in names if n), None)


def device_copy_method(meta: dict) -> str:
    """How the parts measured the device copy, as their records say (the framework runtime that
    measured it names its method)."""
    probes = [p.get("device_copy_bandwidth") or {} for p in (meta.get("parts") or {}).values()]
    methods = list(dict.fromkeys(str(p["method"]) for p in probes if p.get("method")))
    sizes = sorted({p["bytes_per_copy"] // 2 for p in probes if isinstance(p.get("bytes_per_copy"), int)})
    size = f" of a {fmt_bytes(sizes[0])} buffer" if len(sizes) == 1 else ""
    return f"{' / '.join(methods) or 'device copy'}{size}, read + write"


def bandwidth_section(rows: list[dict], meta: dict) -> str | None:
    chosen = bandwidth_rows(rows)
    if not chosen:
        return None
    copies, name = device_copy(meta)
    peak = datasheets.peak_bandwidth(name)
    limits = "the device copy bandwidth (not measured)"
    if copies:
        spread = (f"{fmt_num(copies[0])} GB/s" if copies[0] == copies[-1]
                  else f"{fmt_num(copies[0])}-{fmt_num(copies[-1])} GB/s over the parts")
        limits = f"the device copy bandwidth measured in the same process ({spread}; {device_copy_method(meta)})"
    if peak:
        limits += f" / the datasheet peak of the {peak[1]} ({fmt_num(peak[0])} GB/s, see harness/bench/datasheets.py)"
    out = [f"## GPU: the bandwidth regime (V={chosen[0]['vocab']}, uniform ids)",
           f"Useful GB/s of each call, and in brackets its share of {limits}. Small batches are launch-bound "
           "(see the launch floor); from about a million ids per call on, the gather is limited by memory, "
           "and the share says how close each framework comes to the hardware."]
    shares = share_table(chosen)
    if shares:
        out.append("Share of the copy bandwidth / of the datasheet peak, float32 forward, at the largest batch of "
                   "each width:\n\n" + shares)
    adapters = sorted({r["adapter"] for r in chosen if r["variant"] == "gather" or r["status"] == "ok"})
    for pass_ in ("forward", "forward_backward"):
        for dtype in sorted({r["dtype"] for r in chosen}):
            mine = [r for r in chosen if r["pass"] == pass_ and r["dtype"] == dtype and r["adapter"] in adapters]
            if not mine:
                continue
            table = tables.markdown(tables.spread(mine, ["dim", "n_ids"], "adapter", _cell).rename(
                columns={"dim": "D", "n_ids": "N ids"}))
            if BEYOND in table:
                table += "\n\n" + BEYOND_NOTE
            out.append(f"**{pass_}, {dtype}**\n\n" + table)
    verdict = closest_to_limit(chosen)
    if verdict:
        out.append(verdict)
    return "\n\n".join(out)


def share_table(rows: list[dict]) -> str | None:
    """float32 forward at the largest batch of each width: every gather's share of the copy
    bandwidth (and of the datasheet peak), one row per width."""
    forward = [r for r in rows if r["pass"] == "forward" and r["status"] == "ok" and r["variant"] == "gather"
               and r["dtype"] == "float32" and r.get("pct_copy_bw") is not None]
    if not forward:
        return None
    largest = {d: max(r["n_ids"] for r in forward if r["dim"] == d) for d in {r["dim"] for r in forward}}
    chosen = [r for r in forward if r["n_ids"] == largest[r["dim"]]]
    table = tables.spread(chosen, ["dim", "n_ids"], "adapter", lambda r: f"{fmt_num(r['pct_copy_bw'])} %" + (
        f" / {fmt_num(r['pct_peak_bw'])} %" if r.get("pct_peak_bw") is not None else ""))
    return tables.markdown(table.rename(columns={"dim": "D", "n_ids": "N ids"}))


def closest_to_limit(rows: list[dict]) -> str | None:
    """Which gather comes closest to the copy bandwidth in the forward pass, per width, at the
    largest batch measured there."""
    forward = [r for r in rows if r["pass"] == "forward" and r["status"] == "ok" and r["variant"] == "gather"
               and r["dtype"] == "float32" and r.get("pct_copy_bw") is not None and r["pct_copy_bw"] <= 100]
    lines = []
    for dim in sorted({r["dim"] for r in forward}):
        at_dim = [r for r in forward if r["dim"] == dim]
        n = max(r["n_ids"] for r in at_dim)
        ranked = sorted((r for r in at_dim if r["n_ids"] == n), key=lambda r: -r["pct_copy_bw"])
        best, worst = ranked[0], ranked[-1]
        peak = f", {fmt_num(best['pct_peak_bw'])} % of the datasheet peak" if best.get("pct_peak_bw") else ""
        line = (f"- D={dim}, N={n}: closest is **{best['adapter']}** at {fmt_num(best['pct_copy_bw'])} % of the "
                f"copy bandwidth{peak}")
        if worst is not best:
            line += f"; furthest is {worst['adapter']} at {fmt_num(worst['pct_copy_bw'])} %"
        lines.append(line + ".")
    if not lines:
        return None
    return "Closest to the limit (float32 forward, largest batch per width):\n\n" + "\n".join(lines)


def backward_section(rows: list[dict]) -> str | None:
    table = backward_table(rows)
    return "## GPU: forward+backward against forward\n\n" + BACKWARD_TEXT + "\n\n" + table if table else None


def backward_table(rows: list[dict]) -> str | None:
    chosen = bandwidth_rows(rows)
    dims = sorted({r["dim"] for r in chosen})
    dim = 128 if 128 in dims else (dims[0] if dims else None)  # one width: the ratio's trend is over N
    chosen = [r for r in chosen if r["dim"] == dim]
    timed = {(r["adapter"], r["pass"], r["dtype"], r["dim"], r["n_ids"]): r["median_s"]
             for r in chosen if r["status"] == "ok" and r["median_s"]}
    body = []
    for adapter, pass_, dtype, dim, n in sorted(timed):
        if pass_ != "forward" or dtype != "float32":
            continue
        both = timed.get((adapter, "forward_backward", dtype, dim, n))
        if both:
            fwd = timed[(adapter, pass_, dtype, dim, n)]
            body.append([adapter, dim, n, fmt_time(fwd), fmt_time(both), fmt_num(both / fwd)])
    if not body:
        return None
    return tables.markdown_rows(["adapter", "D", "N ids", "forward", "forward+backward", "ratio"], body)
