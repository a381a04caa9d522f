"""TensorFlow: ``tf.nn.embedding_lookup`` (IndexedSlices gradient) and ``tf.one_hot`` @ W.

Runs eagerly; ``compile`` wraps in ``tf.function`` (no XLA, so the same kernels and the same
out-of-range behaviour as eager). The ``-xla`` adapters run forward and gradient under
``tf.function(jit_compile=True)``: XLA's Gather clamps its start indices into range (openxla.org,
"Operation semantics", Gather), so there a bad id reads the first or last row instead of raising."""

from __future__ import annotations

import os
import sys
from dataclasses import replace

import numpy as np

from backends._common import XLA_ONEHOT_NARROW_IOTA, builtin_ids, onehot_rules, saturates, xla_cpu_thread_flags
from harness.adapter import BagDeclared, Declared, EmbeddingAdapter
from harness.dtypes import dtype_name, np_dtype
from harness.errors import FrameworkUnavailable
from harness.framework import DeviceMemoryProbe, Framework, Runtime

_WEIGHT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError:
        raise FrameworkUnavailable(
            "tensorflow is not installed: pip install 'embedding-harness[tensorflow]'") from None
    return tf


def _tf_device_name(tf, device: str) -> str:
    if device == "cpu":
        return "/CPU:0"
    if not tf.config.list_physical_devices("GPU"):
        raise FrameworkUnavailable("tensorflow sees no GPU (tensorflow-cpu build or no CUDA device)")
    return "/GPU:0"


class TensorflowLookup(EmbeddingAdapter):
    framework = "tensorflow"
    variant = "gather"
    kind: str | None = None  # the id's middle part when it is not the variant ("bag", "bag-safe")
    twin_kind = "gather"

    def __init__(self, device: str = "cpu"):
        self.tf = tf = _tf()
        self.device = device
        self.tf_device = _tf_device_name(tf, device)
        self.id, self.gather_twin, self.eager_twin = builtin_ids("tensorflow", self.kind or self.variant, self.mode,
                                                                 device, self.twin_kind)
        self.declared = self._declare()

    def _declare(self) -> Declared:
        on_gpu = self.device != "cpu"
        return Declared(
            weight_dtypes=_WEIGHT_DTYPES, index_dtypes=("int16", "int32", "int64"),
            # Validated on CPU; on GPU "a 0 is stored in the corresponding output" (tf.gather docs).
            negative_index="zeros" if on_gpu else "raise",
            out_of_range="zeros" if on_gpu else "raise",
            gradient="sparse",
            # Measured on CPU only (no TensorFlow on the GPU machines this project was run on).
            deviations=self._index_limits(),
            platform_deviations=(saturates(_WEIGHT_DTYPES, device_type="cpu"),),
        )

    def _index_limits(self) -> dict[str, str]:
        if self.variant != "gather":
            return {}
        # Observed: GatherV2 refuses int16 ids for a table of more than 32767 rows ("params.shape[0]
        # too large for int16 indexing"), even when every id fits in int16; smaller tables work.
        return {"index_dtypes": "int16 ids cannot index a table of more than 32767 rows, even ids that fit "
                                "in int16: GatherV2 requires params.shape[0] <= 32767 for int16 indices"}

    def versions(self):
        return {"tensorflow": self.tf.__version__}

    def runtime_settings(self):
        t = self.tf.config
        return {"intra_op_threads": t.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": t.threading.get_inter_op_parallelism_threads(),
                "tf32_enabled": t.experimental.tensor_float_32_execution_enabled()}

    def _tensor(self, array):
        tf = self.tf
        array = np.asarray(array)
        with tf.device(self.tf_device):
            if dtype_name(array.dtype) == "bfloat16":
                return tf.cast(tf.constant(array.astype(np.float32)), tf.bfloat16)
            return tf.identity(tf.constant(array))

    def prepare_weights(self, weights):
        return self._tensor(weights)

    def prepare_ids(self, ids):
        return self._tensor(ids)

    def _lookup(self, weights, ids):
        return self.tf.nn.embedding_lookup(weights, ids)

    def forward(self, weights, ids):
        with self.tf.device(self.tf_device):
            return self._lookup(weights, ids)

    def _gradient(self, weights, ids, upstream):
        with self.tf.GradientTape() as tape:
            tape.watch(weights)
            out = self._lookup(weights, ids)
        return tape.gradient(out, weights, output_gradients=upstream)

    def gradient(self, weights, ids, upstream):
        with self.tf.device(self.tf_device):
            return self._gradient(weights, ids, upstream)

    def is_sparse(self, gradient):
        return isinstance(gradient, self.tf.IndexedSlices)

    def to_numpy(self, value):
        tf = self.tf
        if isinstance(value, tf.IndexedSlices):
            value = tf.convert_to_tensor(value)  # unsorted_segment_sum: duplicates add up
        if value.dtype == tf.bfloat16:
            return tf.cast(value, tf.float32).numpy().astype(np_dtype("bfloat16"))
        return value.numpy()

    def synchronize(self, value):
        # Eager CPU kernels run synchronously; GPU kernels are queued, so wait for them.
        if self.device != "cpu":
            self.tf.test.experimental.sync_devices()

    def compile(self, fn):
        return self.tf.function(fn, reduce_retracing=True)


class TensorflowOneHot(TensorflowLookup):
    """``tf.one_hot(ids, V, dtype=W.dtype) @ W`` (tf.matmul on the flattened ids)."""

    variant = "onehot"

    def _declare(self) -> Declared:
        on_gpu = self.device != "cpu"
        return Declared(
            weight_dtypes=_WEIGHT_DTYPES, index_dtypes=("int8", "uint8", "int32", "int64"),
            negative_index="zeros", out_of_range="zeros", gradient="dense",
            # TensorFlow enables TF32 by default on Ampere+ GPUs.
            matmul_precision="tf32" if on_gpu else "float32",
            platform_deviations=onehot_rules(("float32", "bfloat16", "float64")),
        )

    def _lookup(self, weights, ids):
        tf = self.tf
        one_hot = tf.one_hot(tf.reshape(ids, [-1]), tf.shape(weights)[0], dtype=weights.dtype)
        out = tf.matmul(one_hot, weights)
        return tf.reshape(out, tf.concat([tf.shape(ids), tf.shape(weights)[1:]], axis=0))


class _XlaCompiled:
    """Forward and gradient each under ``tf.function(jit_compile=True)``, one trace per input
    signature (``reduce_retracing`` generalises shapes, as a model's serving function would)."""

    mode = "xla"

    def __init__(self, device: str = "cpu"):
        super().__init__(device)
        self._lookup = self.tf.function(self._lookup, jit_compile=True, reduce_retracing=True)
        self._gradient = self.tf.function(self._gradient, jit_compile=True, reduce_retracing=True)

    def compile(self, fn):
        return fn  # already compiled: the benchmark times the XLA function itself


class TensorflowLookupXla(_XlaCompiled, TensorflowLookup):
    """``tf.nn.embedding_lookup`` under XLA."""

    def _declare(self) -> Declared:
        # XLA clamps bad ids on every device, and its gather takes int16 ids for any table size.
        return replace(super()._declare(), negative_index="clamp", out_of_range="clamp", deviations={})


class TensorflowOneHotXla(_XlaCompiled, TensorflowOneHot):
    """``tf.one_hot(ids, V) @ W`` under XLA."""

    def _declare(self) -> Declared:
        return replace(super()._declare(), deviations=XLA_ONEHOT_NARROW_IOTA)


def gather(device: str = "cpu"):
    return TensorflowLookup(device)


def xla_gather(device: str = "cpu"):
    return TensorflowLookupXla(device)


def xla_onehot(device: str = "cpu"):
    return TensorflowOneHotXla(device)


def onehot(device: str = "cpu"):
    return TensorflowOneHot(device)


# Observed (TensorFlow 2.21): embedding_lookup_sparse returns rows only up to the last bag that
# holds an id, so trailing empty bags have no row; safe_embedding_lookup_sparse returns them.
_DROPS_TRAILING_EMPTY = ("tf.nn.embedding_lookup_sparse returns no row for trailing empty bags (its output has as "
                         "many rows as the last non-empty bag + 1); safe_embedding_lookup_sparse returns zeros there")


class TensorflowSparseBag(TensorflowLookup):
    """``tf.nn.embedding_lookup_sparse``: bags as the rows of a SparseTensor of ids (weights as a
    second SparseTensor), combiner sum or mean. The gradient is IndexedSlices."""

    variant = "gather"
    kind = twin_kind = "bag"
    modes = ("sum", "mean")

    def _declare(self) -> Declared:
        return Declared(weight_dtypes=("float32",), index_dtypes=("int32", "int64"), gradient="sparse",
                        bags=BagDeclared(modes=self.modes, per_sample_weights=True),
                        deviations={c: _DROPS_TRAILING_EMPTY for c in (
                            "bag_sum", "bag_mean", "bag_per_sample_weights", "bag_empty")})

    def prepare_ids(self, bags):
        tf = self.tf
        with tf.device(self.tf_device):
            positions = np.arange(len(bags.ids)) - np.repeat(bags.offsets, bags.lengths)
            indices = np.stack([bags.segment_ids, positions], axis=1).astype(np.int64).reshape(-1, 2)
            shape = [bags.n_bags, int(bags.lengths.max(initial=0))]
            ids = tf.sparse.SparseTensor(indices, self._tensor(bags.ids.astype(np.int64)), shape)
            weights = None if bags.per_sample_weights is None else tf.sparse.SparseTensor(
                indices, self._tensor(bags.per_sample_weights), shape)
        return ids, weights, bags.mode

    def _lookup(self, weights, native):
        ids, per_sample, mode = native
        return self.tf.nn.embedding_lookup_sparse(weights, ids, per_sample, combiner=mode)


class TensorflowSafeSparseBag(TensorflowSparseBag):
    """``tf.nn.safe_embedding_lookup_sparse``: a row for every bag, zeros for an empty one."""

    kind = "bag-safe"

    def _declare(self) -> Declared:
        return Declared(weight_dtypes=("float32",), index_dtypes=("int32", "int64"), gradient="sparse",
                        bags=BagDeclared(modes=self.modes, per_sample_weights=True))

    def _lookup(self, weights, native):
        ids, per_sample, mode = native
        return self.tf.nn.safe_embedding_lookup_sparse(weights, ids, per_sample, combiner=mode)


class TensorflowMultiHotBag(TensorflowSparseBag):
    """The multi-hot twin: ``tf.sparse.sparse_dense_matmul(M, W)`` with M the bags' (weighted)
    id counts as a SparseTensor, divided by each bag's length for mean."""

    variant = "onehot"
    kind = "bag-multihot"
    twin_kind = "bag-safe"  # the gather with a row for every bag, as M @ W has

    def _declare(self) -> Declared:
        return Declared(weight_dtypes=("float32",), index_dtypes=("int32", "int64"), gradient="dense",
                        matmul_precision="tf32" if self.device != "cpu" else "float32",
                        bags=BagDeclared(modes=self.modes, per_sample_weights=True))

    def _lookup(self, weights, native):
        tf = self.tf
        ids, per_sample, mode = native
        values = per_sample.values if per_sample is not None else tf.ones_like(ids.values, dtype=weights.dtype)
        rows = ids.indices[:, 0]
        if mode == "mean":
            lengths = tf.math.bincount(tf.cast(rows, tf.int32), minlength=tf.cast(ids.dense_shape[0], tf.int32),
                                       dtype=weights.dtype)
            values = values / tf.gather(lengths, rows)
        shape = tf.stack([ids.dense_shape[0], tf.shape(weights, tf.int64)[0]])
        multihot = tf.sparse.reorder(tf.sparse.SparseTensor(tf.stack([rows, ids.values], axis=1), values, shape))
        return tf.sparse.sparse_dense_matmul(multihot, weights)


def sparse_bag(device: str = "cpu"):
    return TensorflowSparseBag(device)


def safe_sparse_bag(device: str = "cpu"):
    return TensorflowSafeSparseBag(device)


def multihot_bag(device: str = "cpu"):
    return TensorflowMultiHotBag(device)


class TensorflowRuntime(Runtime):
    """TensorFlow's thread pools (set by variables before import, or once after) and its GPU
    allocator's counters."""

    name = "tensorflow"

    def process_env(self, threads, base):
        env = {"TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": str(threads),
               **xla_cpu_thread_flags(threads, base)}
        # On a GPU TensorFlow would reserve most of the device memory at start, starving any
        # other framework in the process: allocate on demand instead.
        for name, value in (("TF_CPP_MIN_LOG_LEVEL", "2"), ("TF_FORCE_GPU_ALLOW_GROWTH", "true")):
            if name not in base:
                env[name] = value
        return env

    def set_threads(self, threads):
        tf = sys.modules.get("tensorflow")
        if tf is None:
            return None
        cfg = tf.config.threading
        try:
            cfg.set_intra_op_parallelism_threads(threads)
            cfg.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # the runtime already started: the variables set before import apply
            pass
        return {"intra_op": cfg.get_intra_op_parallelism_threads() or os.environ.get("TF_NUM_INTRAOP_THREADS"),
                "inter_op": cfg.get_inter_op_parallelism_threads() or os.environ.get("TF_NUM_INTEROP_THREADS")}

    def memory_probe(self, device):
        return _GpuMemoryProbe(_tf()) if device == "cuda" else None


class _GpuMemoryProbe(DeviceMemoryProbe):
    """TensorFlow's GPU allocator: its peak after reset_memory_stats."""

    def __init__(self, tf):
        super().__init__()
        self.tf = tf

    def start(self):
        self.tf.config.experimental.reset_memory_stats("GPU:0")
        return self.tf.config.experimental.get_memory_info("GPU:0")["current"]

    def peak(self):
        return self.tf.config.experimental.get_memory_info("GPU:0")["peak"]


RUNTIME = TensorflowRuntime()
FRAMEWORK = Framework(
    name="tensorflow",
    adapters={"tensorflow-gather": gather, "tensorflow-onehot": onehot, "tensorflow-gather-xla": xla_gather,
              "tensorflow-onehot-xla": xla_onehot, "tensorflow-bag": sparse_bag,
              "tensorflow-bag-safe": safe_sparse_bag, "tensorflow-bag-multihot": multihot_bag},
    devices=("cpu", "cuda"), runtime=RUNTIME)
