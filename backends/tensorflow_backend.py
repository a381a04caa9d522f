"""TensorFlow: ``tf.nn.embedding_lookup`` (IndexedSlices gradient) and ``tf.one_hot`` @ W.

Runs eagerly; ``compile`` wraps in ``tf.function`` (no XLA, so the same kernels and the same
out-of-range behaviour as eager). Under XLA (jit_compile=True) out-of-range ids clamp
instead of raising (XLA's Gather clamps its start indices: openxla.org, "Operation
semantics", Gather): that mode would be a separate adapter."""

from __future__ import annotations

import os

import numpy as np

from backends._common import onehot_rules, saturates
from harness.adapter import Declared, EmbeddingAdapter
from harness.dtypes import dtype_name, np_dtype
from harness.errors import FrameworkUnavailable

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

    def __init__(self, device: str = "cpu"):
        self.tf = tf = _tf()
        self.device = device
        self.tf_device = _tf_device_name(tf, device)
        suffix = "" if device == "cpu" else f"-{device}"
        self.id = f"tensorflow-{self.variant}{suffix}"
        self.gather_twin = f"tensorflow-gather{suffix}"
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

    def gradient(self, weights, ids, upstream):
        tf = self.tf
        with tf.device(self.tf_device):
            with tf.GradientTape() as tape:
                tape.watch(weights)
                out = self._lookup(weights, ids)
            return tape.gradient(out, weights, output_gradients=upstream)

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


def gather(device: str = "cpu"):
    return TensorflowLookup(device)


def onehot(device: str = "cpu"):
    return TensorflowOneHot(device)
