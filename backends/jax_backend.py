"""JAX: ``jnp.take`` and ``jax.nn.one_hot`` @ W; Flax ``nnx.Embed``.

JAX runs with x64 disabled by default, so float64 weights would silently become float32:
float64 is not declared. int64 ids are likewise narrowed to int32 (harmless for valid ids).
Gradients come from ``jax.vjp``; ``compile`` is ``jax.jit``. The eager adapters dispatch op by
op (each op compiled on its own); the ``-jit`` adapters run forward and vjp as one ``jax.jit``
program, as a training step would."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import numpy as np

from backends._common import (
    JAX_ONEHOT_NARROW_IOTA,
    XLA_CPU_GATHER_FLUSHES_BF16,
    builtin_ids,
    onehot_rules,
    saturates,
    xla_cpu_thread_flags,
)
from harness.adapter import COMPILE_CACHE_ENV, BagDeclared, Declared, EmbeddingAdapter
from harness.dtypes import dtype_name, np_dtype
from harness.errors import FrameworkUnavailable
from harness.framework import Framework, Runtime

_WEIGHT_DTYPES = ("float16", "bfloat16", "float32")
_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise FrameworkUnavailable("jax is not installed: pip install 'embedding-harness[jax]'") from None
    share_compiled_programs(jax)
    return jax, jnp


def share_compiled_programs(jax) -> None:
    """Keep every compiled program in the run's shared folder (JAX's persistent compilation
    cache), however small: conformance compiles hundreds of tiny programs per adapter, many of
    them the same for the next JAX-based adapter (Flax, Keras on JAX). Compiling is deterministic,
    so a cached program is the program."""
    folder = os.environ.get(COMPILE_CACHE_ENV)
    if folder and jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def _jax_device(jax, device: str):
    platform = "gpu" if device == "cuda" else device
    try:
        return jax.devices(platform)[0]
    except RuntimeError:
        raise FrameworkUnavailable(f"jax sees no {device} device (install jax[cuda12] for GPUs)") from None


class JaxTake(EmbeddingAdapter):
    framework = "jax"
    variant = "gather"
    kind: str | None = None  # the id's middle part when it is not the variant ("bag")
    twin_kind = "gather"

    def __init__(self, device: str = "cpu"):
        self.jax, self.jnp = _jax()
        self.device = device
        self.jax_device = _jax_device(self.jax, device)
        self.id, self.gather_twin, self.eager_twin = builtin_ids(self.framework, self.kind or self.variant, self.mode,
                                                                 device, self.twin_kind)
        self.declared = self._declare()

    def _declare(self) -> Declared:
        return Declared(
            weight_dtypes=_WEIGHT_DTYPES, index_dtypes=_INT_DTYPES,
            # jnp.take's default mode="fill": negatives wrap once, out-of-range rows are NaN.
            negative_index="wrap", out_of_range="nan", gradient="dense",
            platform_deviations=(saturates(_WEIGHT_DTYPES), XLA_CPU_GATHER_FLUSHES_BF16),
        )

    def versions(self):
        import jaxlib

        return {"jax": self.jax.__version__, "jaxlib": jaxlib.__version__}

    def runtime_settings(self):
        cfg = self.jax.config
        return {"default_matmul_precision": str(cfg.jax_default_matmul_precision),
                "enable_x64": bool(cfg.jax_enable_x64), "device": str(self.jax_device)}

    def _array(self, array):
        array = np.asarray(array)
        if dtype_name(array.dtype) == "float64" and not self.jax.config.jax_enable_x64:
            raise TypeError("float64 needs jax_enable_x64; JAX would silently use float32")
        return self.jax.device_put(array, self.jax_device)

    def prepare_weights(self, weights):
        return self._array(weights)

    def prepare_ids(self, ids):
        ids = np.asarray(ids)
        if ids.dtype.kind == "f":
            return self.jax.device_put(ids, self.jax_device)
        return self._array(ids)

    def _lookup(self, weights, ids):
        return self.jnp.take(weights, ids, axis=0)

    def forward(self, weights, ids):
        return self._lookup(weights, ids)

    def gradient(self, weights, ids, upstream):
        _, pullback = self.jax.vjp(lambda w: self._lookup(w, ids), weights)
        return pullback(upstream)[0]

    def to_numpy(self, value):
        out = np.asarray(value)
        return out.astype(np_dtype("bfloat16")) if dtype_name(out.dtype) == "bfloat16" else out

    def synchronize(self, value):
        self.jax.block_until_ready(value)

    def compile(self, fn):
        return self.jax.jit(fn)


class JaxOneHot(JaxTake):
    """``jax.nn.one_hot(ids, V, dtype=W.dtype) @ W`` at the default matmul precision."""

    variant = "onehot"

    def _declare(self) -> Declared:
        on_gpu = self.device != "cpu"
        return Declared(
            # jax.nn.one_hot compares ids with an iota, so float ids work too (a zero row if
            # non-integral).
            weight_dtypes=_WEIGHT_DTYPES, index_dtypes=_INT_DTYPES + ("float32",),
            negative_index="zeros", out_of_range="zeros", gradient="dense",
            # Precision.DEFAULT rounds float32 matmul inputs to TF32 on A100/H100 GPUs (JAX docs:
            # jax.default_matmul_precision).
            matmul_precision="tf32" if on_gpu else "float32",
            deviations=JAX_ONEHOT_NARROW_IOTA,
            # cuBLAS keeps -0.0 and subnormals where XLA's CPU dot does not.
            platform_deviations=onehot_rules(("float32", "bfloat16"), negative_zero_device="cpu"),
        )

    def _lookup(self, weights, ids):
        return self.jax.nn.one_hot(ids, weights.shape[0], dtype=weights.dtype) @ weights


class FlaxEmbed(JaxTake):
    """``flax.nnx.Embed`` (jnp.take inside; float ids raise ValueError)."""

    framework = "flax"

    def __init__(self, device: str = "cpu"):
        try:
            from flax import nnx
        except ImportError:
            raise FrameworkUnavailable("flax is not installed: pip install 'embedding-harness[jax]'") from None
        self.nnx = nnx
        super().__init__(device)
        self.gather_twin = None
        self.declared = replace(self.declared, deviations={
            **self.declared.deviations,
            # Embed broadcasts W when num_embeddings == 1 (flax#3590) and that path assumes
            # ids of rank >= 1.
            "vocab_of_one": "nnx.Embed with num_embeddings=1 raises 'Cannot broadcast to shape "
                            "with fewer dimensions' for a 0-d id",
        })

    def versions(self):
        import flax

        return {**super().versions(), "flax": flax.__version__}

    def _lookup(self, weights, ids):
        # A fresh module per call keeps the adapter pure (jit- and vjp-friendly); the table
        # is the module's parameter, exactly as a model would hold it. Its initialiser hands
        # over W: the default one drew a random table of every new shape only to be replaced,
        # and those draws (compiled per shape) were most of this adapter's conformance time.
        layer = self.nnx.Embed(weights.shape[0], weights.shape[1], dtype=weights.dtype,
                               param_dtype=weights.dtype, embedding_init=lambda key, shape, dtype: weights,
                               rngs=self.nnx.Rngs(0))
        return layer(ids)


class _Jitted:
    """The forward and the gradient (forward and vjp together) each one ``jax.jit`` program."""

    mode = "jit"

    def __init__(self, device: str = "cpu"):
        super().__init__(device)
        self._jit_forward = self.jax.jit(super().forward)
        self._jit_gradient = self.jax.jit(super().gradient)

    def forward(self, weights, ids):
        return self._jit_forward(weights, ids)

    def gradient(self, weights, ids, upstream):
        return self._jit_gradient(weights, ids, upstream)


class JaxTakeJit(_Jitted, JaxTake):
    """``jax.jit(jnp.take)``."""


class JaxOneHotJit(_Jitted, JaxOneHot):
    """``jax.jit(jax.nn.one_hot(ids, V) @ W)``."""


def gather(device: str = "cpu"):
    return JaxTake(device)


def jit_gather(device: str = "cpu"):
    return JaxTakeJit(device)


def jit_onehot(device: str = "cpu"):
    return JaxOneHotJit(device)


def onehot(device: str = "cpu"):
    return JaxOneHot(device)


def flax_embed(device: str = "cpu"):
    return FlaxEmbed(device)


class JaxSegmentBag(JaxTake):
    """Bags as JAX users write them: ``jax.ops.segment_sum`` (``segment_max``) over ``jnp.take``,
    the mean as that sum divided by ``segment_sum`` of ones. Empty bags: sum 0, mean 0/0 = NaN,
    max the reduction's identity -inf (observed by bag_empty)."""

    variant = "gather"
    kind = twin_kind = "bag"

    def _declare(self) -> Declared:
        return Declared(weight_dtypes=("float32",), index_dtypes=("int32", "int64"), gradient="dense",
                        bags=BagDeclared(modes=("sum", "mean", "max"), per_sample_weights=True,
                                         empty_bag={"mean": "nan", "max": "-inf"}))

    def prepare_ids(self, bags):
        psw = None if bags.per_sample_weights is None else self._array(bags.per_sample_weights)
        return self._array(bags.ids), self._array(bags.segment_ids.astype(np.int32)), bags.n_bags, bags.mode, psw

    def compile(self, fn):
        """``jax.jit`` with the bag count and mode static (one program per pair), as a model
        whose batch of bags has a fixed shape compiles it."""
        programs = {}

        def call(weights, native, *rest):
            ids, segments, n_bags, mode, psw = native
            if (n_bags, mode) not in programs:
                programs[n_bags, mode] = self.jax.jit(
                    lambda w, i, s, p, *r: fn(w, (i, s, n_bags, mode, p), *r))
            return programs[n_bags, mode](weights, ids, segments, psw, *rest)

        return call

    def _reduce(self, rows, native):
        ops = self.jax.ops
        _, segments, n_bags, mode, _ = native
        if mode == "max":
            return ops.segment_max(rows, segments, num_segments=n_bags)
        total = ops.segment_sum(rows, segments, num_segments=n_bags)
        if mode == "mean":
            ones = self.jnp.ones((rows.shape[0], 1), rows.dtype)
            total = total / ops.segment_sum(ones, segments, num_segments=n_bags)
        return total

    def _lookup(self, weights, native):
        ids, _, _, _, psw = native
        rows = self.jnp.take(weights, ids, axis=0)
        if psw is not None:
            rows = rows * psw[:, None]
        return self._reduce(rows, native)


class JaxMultiHotBag(JaxSegmentBag):
    """The multi-hot twin: ``segment_sum(one_hot(ids, V) * w) @ W`` (mean: divided by the bag's
    length first). There is no multi-hot max."""

    variant = "onehot"
    kind = "bag-multihot"

    def _declare(self) -> Declared:
        return Declared(weight_dtypes=("float32",), index_dtypes=("int32", "int64"), gradient="dense",
                        matmul_precision="tf32" if self.device != "cpu" else "float32",
                        bags=BagDeclared(modes=("sum", "mean"), per_sample_weights=True, empty_bag={"mean": "nan"}),
                        deviations={"bag_mean": "an empty bag's mean row of M is 0/0 = NaN, and M^T @ up spreads it "
                                                "into every row's gradient (the gather form keeps it in that bag's "
                                                "output)"})

    def _lookup(self, weights, native):
        ids, _, _, _, psw = native
        one_hot = self.jax.nn.one_hot(ids, weights.shape[0], dtype=weights.dtype)
        if psw is not None:
            one_hot = one_hot * psw[:, None]
        return self._reduce(one_hot, native) @ weights


def segment_bag(device: str = "cpu"):
    return JaxSegmentBag(device)


def multihot_bag(device: str = "cpu"):
    return JaxMultiHotBag(device)


class JaxRuntime(Runtime):
    """JAX has no thread setting (the CPU affinity mask bounds it) and no resettable memory peak;
    its process environment is XLA's."""

    name = "jax"

    def process_env(self, threads, base):
        env = xla_cpu_thread_flags(threads, base)
        # On a GPU JAX would preallocate most of the device memory at start: allocate on demand.
        if "XLA_PYTHON_CLIENT_PREALLOCATE" not in base:
            env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
        return env

    def set_threads(self, threads):
        if "jax" not in sys.modules:
            return None
        return {"threads": "no thread setting; bounded by the CPU affinity mask",
                "xla_flags": os.environ.get("XLA_FLAGS", "")}


RUNTIME = JaxRuntime()
FRAMEWORK = Framework(
    name="jax",
    adapters={"jax-gather": gather, "jax-onehot": onehot, "jax-gather-jit": jit_gather, "jax-onehot-jit": jit_onehot,
              "jax-bag": segment_bag, "jax-bag-multihot": multihot_bag, "flax-gather": flax_embed},
    devices=("cpu", "cuda"), runtime=RUNTIME)
