"""This machine's rates, measured in the same process and thread count as the benchmarks.

Copy bandwidth is the roofline denominator for "% of copy bandwidth": NumPy copies a buffer
well beyond the last-level cache, split over the same number of threads the frameworks use
(``np.copyto`` releases the GIL), counting 2 x size bytes (one read, one write; the
write-allocate read some CPUs add is not counted, as in STREAM). The median of several repeats,
as the rows report medians (the best is recorded too).

The float32 GEMM rate only feeds the one-hot time estimate (a lower bound on a one-hot
call's time), never a reported figure.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MiB = 2**20


def default_copy_bytes(l3_bytes: int | None) -> int:
    """STREAM's rule: each array at least 4 x the last-level cache; at least 256 MiB."""
    return max(256 * MiB, 4 * (l3_bytes or 0))


def copy_bandwidth(threads: int, nbytes: int, repeats: int = 5, single_thread_repeats: int = 0) -> dict:
    """Median-of-``repeats`` GB/s (1e9) of a ``nbytes`` float64 copy split over ``threads``; with
    ``single_thread_repeats``, also the single-thread figure over the same buffers (faulting
    in gigabytes of fresh pages twice cost a part more than its copies did)."""
    threads = max(1, threads)
    src = np.ones(max(nbytes // 8, threads), dtype=np.float64)
    dst = np.zeros_like(src)  # zeros_like + the warm-up copy fault every page in first
    moved = 2 * src.nbytes

    def timed_copies(n_threads: int, count: int) -> list[float]:
        src_parts, dst_parts = np.array_split(src, n_threads), np.array_split(dst, n_threads)

        def copy(k: int) -> None:
            np.copyto(dst_parts[k], src_parts[k])

        times = []
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            list(pool.map(copy, range(n_threads)))
            for _ in range(count):
                start = time.perf_counter()
                list(pool.map(copy, range(n_threads)))
                times.append(time.perf_counter() - start)
        return times

    times = timed_copies(threads, repeats)
    if not np.array_equal(dst[:: max(1, dst.size // 1000)], src[:: max(1, src.size // 1000)]):
        raise RuntimeError("copy-bandwidth probe: destination differs from source")
    median = float(np.median(times))
    out = {"gbps": moved / median / 1e9, "best_gbps": moved / min(times) / 1e9, "bytes_per_copy": moved,
           "buffer_bytes": src.nbytes, "threads": threads, "repeats": repeats, "best_s": min(times),
           "median_s": median}
    if single_thread_repeats:
        single = timed_copies(1, single_thread_repeats) if threads > 1 else times
        out["single_thread_gbps"] = moved / float(np.median(single)) / 1e9
    return out


def gemm_flops_per_s(size: int = 1024, repeats: int = 3) -> float:
    """float32 GEMM FLOP/s of NumPy's BLAS (best of ``repeats``), a one-hot speed bound."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def event_copy_bandwidth(copy, make_event, sync, moved_bytes: int, repeats: int = 10) -> dict:
    """Median-of-``repeats`` GB/s of a device copy timed by events (``torch.cuda.Event`` API)."""
    copy()
    sync()
    times = []
    for _ in range(repeats):
        start, end = make_event(), make_event()
        start.record()
        copy()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    median = float(np.median(times))
    return {"gbps": moved_bytes / median / 1e9, "best_gbps": moved_bytes / min(times) / 1e9,
            "bytes_per_copy": moved_bytes, "repeats": repeats, "best_s": min(times), "median_s": median,
            "method": "device copy, CUDA events"}


def device_copy_info(device: str, runtimes, nbytes: int = 1 << 30) -> dict:
    """``device``'s copy bandwidth and L2 size, the denominators of its rows, measured by the
    first framework runtime that can (``Runtime.copy_bandwidth``); otherwise an ``error`` that
    says why none could. Never raises: a probe must not stop the benchmarks."""
    reasons = []
    for runtime in dict.fromkeys(runtimes):
        name = runtime.name or type(runtime).__name__
        try:
            info = runtime.copy_bandwidth(device, nbytes)
        except Exception as exc:  # a missing framework, a CUDA error: try the next one
            info = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        if info is None:
            continue
        if "error" in info:
            reasons.append(f"{name}: {info['error']}")
            continue
        return {**info, "measured_by": name}
    why = "; ".join(reasons) or "no registered framework measures it"
    return {"error": f"{device} copy bandwidth not measured ({why})"}
