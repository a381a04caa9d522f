"""Figures derived from a timing: useful bytes, GB/s, % of copy bandwidth, FLOP/s, cache fit.

Useful bytes count the traffic an ideal implementation cannot avoid (FBGEMM/TorchRec
convention, plus index reads), not what the hardware really moved; a cache-resident table
can therefore show more GB/s than DRAM delivers. With N ids, a V x D table of s-byte
elements, i-byte ids and U distinct ids:

    forward           = N*(2*D*s + i)                 row read + row write + index read
    backward, dense   = N*D*s + N*i + 2*U*D*s + V*D*s read dY, read ids, read-modify-write
                                                      of the U touched rows, zero-fill of dW
    backward, sparse  = N*D*s + N*i + N*D*s + N*i     read dY and ids, write values and
                                                      indices of the sparse gradient
    forward_backward  = backward: ``gradient`` returns dW alone. A compiler (jax.jit,
                        tf.function) drops the unused forward, an eager framework computes it
                        anyway: that is its cost, paid in time, not useful bytes. Charging the
                        forward to both reported 357 % for JAX at V=2, work jit had removed.

One-hot variants are charged the same useful bytes (so GB/s compares with their gather
twins) and, separately, 2*N*V*D FLOPs per matmul: forward 2*N*V*D, forward_backward 4*N*V*D.
GB and GFLOP are decimal (1e9).
"""

from __future__ import annotations

BYTES_FORMULA_MD = """\
| pass | useful bytes (N ids, R output rows, V x D table, s-byte elements, i-byte ids, U distinct ids) |
|---|---|
| forward | N*(D*s + i) + R*D*s: row read + index read + output row write |
| forward_backward, dense gradient | R*D*s + N*i + 2*U*D*s + V*D*s: read dY and ids, \
read-modify-write of the U touched rows, zero-fill of the V x D gradient |
| forward_backward, sparse gradient | R*D*s + N*D*s + 2*N*i: read dY and ids, write the N \
gradient rows and their indices |

R = N for a plain lookup (so its forward is N*(2*D*s + i)); R = N / L for bags of L ids (the
pooling factor), which read N rows and write one per bag, as FBGEMM's table-batched embedding
benchmark counts them.

forward_backward is charged what its result needs: `gradient` returns dW alone, which needs no
forward rows. Compilers (`jax.jit`, `tf.function`) drop the unused forward; eager frameworks
compute it anyway and pay for it in time.

One-hot (multi-hot) rows are charged the same bytes (their GB/s is comparable to the gather's)
and also 2*R*V*D FLOPs per matmul (forward_backward: 4*R*V*D). GB/s = bytes / median / 1e9."""


def forward_bytes(n: int, dim: int, s: int, i: int, rows: int | None = None) -> int:
    return n * (dim * s + i) + (n if rows is None else rows) * dim * s


def backward_bytes(n: int, dim: int, s: int, i: int, unique: int, vocab: int, gradient: str,
                   rows: int | None = None) -> int:
    upstream = (n if rows is None else rows) * dim * s
    if gradient == "sparse":
        return upstream + n * dim * s + 2 * n * i
    return upstream + n * i + 2 * unique * dim * s + vocab * dim * s


def useful_bytes(pass_: str, n: int, vocab: int, dim: int, s: int, i: int, unique: int,
                 gradient: str = "dense", rows: int | None = None) -> int:
    """``rows``: output rows per call (N / L for bags); a plain lookup has one per id."""
    if pass_ == "forward":
        return forward_bytes(n, dim, s, i, rows)
    if pass_ == "forward_backward":
        return backward_bytes(n, dim, s, i, unique, vocab, gradient, rows)
    raise ValueError(f"unknown pass {pass_!r}")


def flops(pass_: str, rows: int, vocab: int, dim: int) -> int:
    one = 2 * rows * vocab * dim
    return one if pass_ == "forward" else 2 * one


def touched_bytes(n: int, vocab: int, dim: int, s: int, i: int, unique: int, batches: int = 1) -> int:
    """What the calls of a timing loop keep touching: the distinct rows over every id batch they
    rotate through (at most the table), plus one call's output and ids."""
    return min(vocab, unique * max(1, batches)) * dim * s + n * dim * s + n * i


def cache_fit(nbytes: int, l2: int | None, l3: int | None) -> str:
    """'L2' or 'L3' when ``nbytes`` fit that (per-core L2, shared L3) cache: the row is hot;
    'no' when not: cold, from DRAM; '' when the sizes are unknown."""
    if l2 and nbytes <= l2:
        return "L2"
    if l3 and nbytes <= l3:
        return "L3"
    return "no" if (l2 or l3) else ""


def derived(*, pass_: str, variant: str, n: int, vocab: int, dim: int, s: int, i: int,
            unique: int, gradient: str, median_s: float | None, copy_gbps: float | None,
            rows: int | None = None) -> dict:
    """lookups/s, GB/s, % of copy bandwidth and (one-hot) GFLOP/s for one median time."""
    out = {"lookups_per_s": None, "gbps": None, "pct_copy_bw": None, "gflops": None}
    if not median_s or median_s <= 0:
        return out
    gbps = useful_bytes(pass_, n, vocab, dim, s, i, unique, gradient, rows) / median_s / 1e9
    out["lookups_per_s"] = n / median_s
    out["gbps"] = gbps
    if copy_gbps:
        out["pct_copy_bw"] = 100.0 * gbps / copy_gbps
    if variant == "onehot":
        out["gflops"] = flops(pass_, n if rows is None else rows, vocab, dim) / median_s / 1e9
    return out
