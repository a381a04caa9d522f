"""PNG figures (matplotlib, Agg): time vs vocabulary per framework, and the crossover."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from harness.bench.crossover import headline  # noqa: E402
from harness.results import atomic_write_bytes  # noqa: E402

PASSES = ("forward", "forward_backward")


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def _series(rows, **where) -> dict[tuple, list[tuple[int, float]]]:
    """(adapter, dim) -> sorted [(vocab, median_s)] for ok rows matching ``where``."""
    out: dict[tuple, list] = defaultdict(list)
    for r in rows:
        if r["status"] == "ok" and r["median_s"] and all(r[k] == v for k, v in where.items()):
            out[(r["adapter"], r["dim"], r["variant"])].append((int(r["vocab"]), float(r["median_s"])))
    return {k: sorted(v) for k, v in out.items()}


def time_vs_vocab(rows: list[dict], framework: str, device: str, path: Path,
                  dtype: str = "float32", distribution: str = "uniform") -> Path:
    """Median time per call vs vocabulary, log-log, gather and one-hot on the same axes."""
    fig, axes = plt.subplots(1, len(PASSES), figsize=(11, 4.2), squeeze=False)
    mine = [r for r in rows if r["framework"] == framework and r["device"] == device]
    if mine:  # one batch size: the one most rows have (the GPU profile also sweeps N at one V)
        n_ids = Counter(r["n_ids"] for r in mine).most_common(1)[0][0]
        mine = [r for r in mine if r["n_ids"] == n_ids]
    # One colour per adapter, one line style per width, squares for one-hot.
    colours = {a: f"C{k}" for k, a in enumerate(sorted({r["adapter"] for r in mine}))}
    styles = {d: ("-", "--", ":", "-.")[k % 4] for k, d in enumerate(sorted({r["dim"] for r in mine if r["dim"]}))}
    for ax, pass_ in zip(axes[0], PASSES, strict=True):
        series = _series(mine, dtype=dtype, distribution=distribution, **{"pass": pass_})
        for (adapter, dim, variant), points in sorted(series.items(), key=lambda kv: str(kv[0])):
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, color=colours[adapter], linestyle=styles.get(dim, "-"),
                    marker="o" if variant == "gather" else "s", markersize=4, label=f"{adapter} D={dim}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("vocabulary size V")
        ax.set_ylabel("median time per call (s)")
        ax.set_title(f"{pass_}")
        ax.grid(True, which="both", alpha=0.3)
        if series:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no timed rows", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(f"{framework} on {device}: {dtype}, {distribution} ids")
    return _save(fig, path)


def crossover(rows: list[dict], entries: list[dict], path: Path) -> Path:
    """One-hot time / gather time vs V per framework (float32 forward, uniform ids): the
    crossover is where a line leaves the shaded region below 1."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    medians = {(r["adapter"], r["device"], r["dim"], int(r["vocab"])): float(r["median_s"])
               for r in rows if r["status"] == "ok" and r["median_s"] and r["dtype"] == "float32"
               and r["pass"] == "forward" and r["distribution"] == "uniform"}
    drawn = 0
    entries = headline(entries)
    # One colour per framework, one line style per width: 14+ lines stay distinguishable.
    palette = plt.get_cmap("tab10").colors
    colours = {f: palette[i % len(palette)] for i, f in enumerate(sorted({e["framework"] for e in entries}))}
    dims = sorted({e["dim"] for e in entries})
    for e in entries:
        points = sorted((v, medians[(e["onehot_adapter"], e["device"], e["dim"], v)] /
                         medians[(e["gather_adapter"], e["device"], e["dim"], v)])
                        for (a, d, dim, v) in medians
                        if a == e["onehot_adapter"] and d == e["device"] and dim == e["dim"]
                        and (e["gather_adapter"], d, dim, v) in medians)
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o" if dims.index(e["dim"]) % 2 == 0 else "s", color=colours[e["framework"]],
                linestyle=("-", "--", ":", "-.")[dims.index(e["dim"]) % 4],
                label=f"{e['framework']} ({e['device']}, D={e['dim']}): {e['verdict'].split(' (')[0]}")
        drawn += 1
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("vocabulary size V")
    ax.set_ylabel("one-hot time / gather time")
    ax.set_title("Crossover: one-hot is faster than gather below 1 (float32 forward)")
    ax.grid(True, which="both", alpha=0.3)
    if drawn:
        ax.legend(fontsize=7, title="largest V where one-hot wins", title_fontsize=7)
        ymin, ymax = ax.get_ylim()
        ymin, ymax = min(ymin, 0.5), max(ymax, 2.0)
        ax.axhspan(ymin, 1.0, color="tab:green", alpha=0.08)
        ax.set_ylim(ymin, ymax)
    else:
        ax.text(0.5, 0.5, "no one-hot/gather pair measured", ha="center", va="center",
                transform=ax.transAxes)
    return _save(fig, path)


def write_all(rows: list[dict], entries: list[dict], plots_dir: Path) -> list[Path]:
    plots_dir = Path(plots_dir)
    written = []
    groups = sorted({(r["framework"], r["device"]) for r in rows if r["variant"] and r["framework"]})
    for framework, device in groups:
        written.append(time_vs_vocab(rows, framework, device,
                                     plots_dir / f"time_vs_vocab-{_slug(framework)}-{device}.png"))
    written.append(crossover(rows, entries, plots_dir / "crossover.png"))
    return written
