"""Shared wording of declared deviations, so every backend states them the same way."""

from collections.abc import Mapping

from harness.adapter import Deviates

SATURATES = (
    "accumulates duplicate-id gradients in the weight dtype, so a float16 row stops growing at "
    "2048 and a bfloat16 row at 256 unit contributions, where adding 1 no longer changes the sum "
    "(the same saturation as apache/mxnet#17703)"
)
NAN_POISON = "0 * inf = nan: one NaN/Inf anywhere in W poisons that column of every output row"
LOSES_NEG_ZERO = "-0.0 + 0 * w = +0.0: the matmul loses the sign of zero"
FLUSHES_SUBNORMALS = "the float32 matmul flushes subnormal inputs to zero (FTZ/DAZ)"
# Observed with a uint8 (uint16) id array and a table of more than 256 (65536) rows; from
# jax.nn.one_hot's implementation, which compares x with lax.broadcasted_iota(x.dtype, ...).
JAX_ONEHOT_NARROW_IOTA = {
    "index_dtypes": "jax.nn.one_hot builds its iota in the ids' dtype: with uint8/uint16 ids and a table of "
                    "more rows than that dtype holds the iota wraps, so rows 256.. (65536..) also match ids "
                    "0.. and their rows are added to the output",
}
# Observed with tf.one_hot under tf.function(jit_compile=True) (TensorFlow 2.21, CPU): eager
# tf.one_hot returns the right rows for the same uint8 ids.
XLA_ONEHOT_NARROW_IOTA = {
    "index_dtypes": "under XLA, tf.one_hot with uint8 ids and a table of more than 256 rows also matches rows "
                    "256.. with ids 0.. and adds their rows to the output (the comparison runs in the ids' "
                    "width, as jax.nn.one_hot's does); eager tf.one_hot is right for the same ids",
}
# Seen in the code inductor generates for aten.embedding_dense_backward on the CPU (torch 2.13):
# a parallel loop over the ids with atomic_add_vec into the gradient rows.
INDUCTOR_CPU_ATOMIC_BACKWARD = Deviates(
    ("deterministic",), "torch.compile's CPU backward scatter-adds duplicate ids with atomic adds from every "
    "OpenMP thread, so the order of the float additions (and the last bits) changes from call to call; with one "
    "thread it is bitwise repeatable", device_type="cpu", min_threads=2)
LOW_PRECISION = ("float16", "bfloat16")
# Measured with jax/jaxlib 0.11.2 on an Intel Xeon (AVX512-BF16, AMX): jnp.take on the CPU returns
# +0.0 for bfloat16 subnormal rows (W[ids] indexing keeps them), in 1 or 16 threads alike; jax
# 0.10.2 on a Xeon with the same CPU flags keeps them. GPU gathers keep them.
XLA_CPU_GATHER_FLUSHES_BF16 = Deviates(
    ("subnormals_preserved",), "XLA's CPU gather (jnp.take, jax >= 0.11) flushes bfloat16 subnormal rows to zero",
    dtypes=("bfloat16",), device_type="cpu", min_versions={"jax": "0.11"})


def saturates(weight_dtypes, device_type: str | None = None) -> Deviates:
    """Duplicate-id gradients accumulate in the weight dtype (on ``device_type``, or everywhere)."""
    return Deviates(("low_precision_accumulation",), SATURATES, device_type=device_type,
                    dtypes=tuple(d for d in LOW_PRECISION if d in weight_dtypes))


def onehot_rules(flushing_dtypes=(), flush_device: str | None = "cpu",
                 negative_zero_device: str | None = None) -> tuple[Deviates, ...]:
    """What a one-hot matmul does differently from a gather: NaN/Inf poisoning everywhere; the
    lost sign of zero (everywhere, or on ``negative_zero_device`` only); and the dtypes whose
    matmul flushes subnormals (on ``flush_device``)."""
    rules = [Deviates(("nan_inf_isolated",), NAN_POISON),
             Deviates(("negative_zero_preserved",), LOSES_NEG_ZERO, device_type=negative_zero_device)]
    if flushing_dtypes:
        rules.append(Deviates(("subnormals_preserved",), FLUSHES_SUBNORMALS, dtypes=tuple(flushing_dtypes),
                              device_type=flush_device))
    return tuple(rules)


def builtin_ids(framework: str, kind: str, mode: str, device: str, twin_kind: str = "gather") -> tuple:
    """(id, gather twin, eager twin) of a built-in adapter, spelled
    ``<framework>-<kind>[-<mode>][-<device>]``: ``torch-bag-cuda``, ``jax-onehot-jit``. The
    gather twin is the same framework's ``twin_kind`` in the same mode and device; the eager twin
    is the same kind run eagerly (None for an eager adapter)."""
    suffix = "" if device == "cpu" else f"-{device}"
    compiled = "" if mode == "eager" else f"-{mode}"
    eager = None if mode == "eager" else f"{framework}-{kind}{suffix}"
    return f"{framework}-{kind}{compiled}{suffix}", f"{framework}-{twin_kind}{compiled}{suffix}", eager


def xla_cpu_thread_flags(threads: int, base: Mapping[str, str]) -> dict[str, str]:
    """XLA_FLAGS for ``threads`` CPU threads (JAX and TensorFlow's XLA read the same variable).

    XLA's CPU thread pool is sized by the cores in the affinity mask (the benchmark narrows the
    mask when fewer threads are asked for); its one thread knob is whether Eigen runs
    multi-threaded at all. (A bare "intra_op_parallelism_threads=N", often copied from forums,
    has no "--" and is ignored.)"""
    flags = [f for f in base.get("XLA_FLAGS", "").split() if not f.startswith("--xla_cpu_multi_thread_eigen")]
    flags.append(f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}")
    return {"XLA_FLAGS": " ".join(flags)}
