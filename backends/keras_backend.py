"""Keras 3: ``keras.layers.Embedding`` and one-hot + ``keras.layers.Dense(use_bias=False)``
holding the same W, on each backend (tensorflow, jax, torch).

Keras fixes its backend at import, so an adapter only loads in a process whose
KERAS_BACKEND matches; elsewhere it is reported as skipped with that reason.
Embedding casts ids that are not int32/int64 to int32, float ids included (silently
truncated), and normalises negative ids once (i + V) on every backend.

Keras places new tensors and variables on the backend's default device, a GPU whenever one is
visible, so every call here runs inside ``keras.device(...)`` for the adapter's own device:
without it the "CPU" adapters of a GPU machine run on the GPU."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from dataclasses import replace

import numpy as np

from backends import jax_backend, tensorflow_backend, torch_backend
from backends._common import (
    INDUCTOR_CPU_ATOMIC_BACKWARD,
    JAX_ONEHOT_NARROW_IOTA,
    XLA_CPU_GATHER_FLUSHES_BF16,
    onehot_rules,
    saturates,
)
from harness.adapter import Declared, EmbeddingAdapter
from harness.dtypes import dtype_name, np_dtype
from harness.errors import FrameworkUnavailable
from harness.framework import Framework

_ALL_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_WEIGHT_DTYPES = {
    "tensorflow": ("float16", "bfloat16", "float32", "float64"),
    "jax": ("float16", "bfloat16", "float32"),  # x64 off: float64 would become float32
    "torch": ("float16", "bfloat16", "float32", "float64"),
}
# Embedding's own id handling per backend, as the index_dtypes and probe checks observe it
# (keras-team/keras#18449 tabulates ops.take's out-of-range behaviour per backend).
_GATHER_IDS = {
    "tensorflow": (_ALL_INTS + ("float32",), "wrap", "raise"),
    "jax": (_ALL_INTS + ("float32",), "wrap", "nan"),
    "torch": (tuple(d for d in _ALL_INTS if d != "uint64") + ("float32",), "wrap", "raise"),
}
# keras.ops.one_hot: zeros for out-of-range ids, except the torch backend, which raises.
_ONEHOT_IDS = {
    "tensorflow": (_ALL_INTS + ("float32",), "zeros", "zeros"),
    "jax": (_ALL_INTS + ("float32",), "zeros", "zeros"),
    "torch": (tuple(d for d in _ALL_INTS if d != "uint64") + ("float32",), "zeros", "raise"),
}
# On CPU; GPU matmuls keep subnormals.
_FLUSHING_MATMULS = {"tensorflow": ("float32", "bfloat16", "float64"), "jax": ("float32", "bfloat16"),
                     "torch": ()}
# Where the one-hot matmul loses -0.0 (None: every device); cuBLAS under XLA keeps it.
_NEGATIVE_ZERO_LOST_ON = {"tensorflow": None, "jax": "cpu", "torch": None}
# Where Embedding's gradient accumulates in the weight dtype (None: every device).
_SATURATES_ON = {"tensorflow": "cpu", "jax": None, "torch": "cpu"}
# Keras type promotion maps float64 to float32 except on TensorFlow ("aligned with JAX",
# keras/src/backend/common/dtypes.py BIT64_TO_BIT32_DTYPE), so ops.matmul - and Dense -
# return float32 for float64 inputs on torch.
_FLOAT64_DEMOTED = "Keras type promotion turns float64 @ float64 into float32 on the torch backend"


def _process_backend() -> str:
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def _keras(backend: str):
    running = _process_backend()
    if running != backend:
        raise FrameworkUnavailable(
            f"needs KERAS_BACKEND={backend}, this process runs Keras on {running}: Keras fixes its "
            f"backend at import (nox -s conformance runs one process per backend)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import keras
    except ImportError:
        raise FrameworkUnavailable("keras is not installed: pip install 'embedding-harness[keras]'") from None
    except Exception as exc:  # Keras imports its backend; a missing backend raises here.
        raise FrameworkUnavailable(f"keras on {backend} is unavailable: {exc}".splitlines()[0]) from None
    if backend == "jax":
        import jax

        from backends.jax_backend import share_compiled_programs

        share_compiled_programs(jax)
    return keras


def _on_device(method):
    """Run an adapter method with Keras' device scope set to the adapter's device."""

    @functools.wraps(method)
    def scoped(self, *args, **kwargs):
        with self._device_scope():
            return method(self, *args, **kwargs)

    return scoped


class KerasEmbedding(EmbeddingAdapter):
    framework = "keras"
    variant = "gather"

    @property
    def framework_label(self) -> str:
        return f"keras-{self.backend}"

    def __init__(self, backend: str, device: str = "cpu"):
        self.keras = _keras(backend)
        self.backend = backend
        self.device = device
        if device != "cpu":
            self._require_gpu()
        suffix = "" if device == "cpu" else f"-{device}"
        self.id = f"keras-{backend}-{self.variant}{suffix}"
        self.gather_twin = f"keras-{backend}-gather{suffix}"
        self._layers: dict = {}
        self.declared = self._declare()

    def _require_gpu(self):
        if self.backend == "torch":
            import torch

            ok = torch.cuda.is_available()
        elif self.backend == "jax":
            import jax

            ok = any(d.platform == "gpu" for d in jax.devices())
        else:
            import tensorflow as tf

            ok = bool(tf.config.list_physical_devices("GPU"))
        if not ok:
            raise FrameworkUnavailable(f"keras on {self.backend} sees no GPU")

    def _declare(self) -> Declared:
        index_dtypes, negative, oob = _GATHER_IDS[self.backend]
        dtypes = _WEIGHT_DTYPES[self.backend]
        return Declared(
            weight_dtypes=dtypes, index_dtypes=index_dtypes, negative_index=negative,
            out_of_range=oob, gradient="sparse" if self.backend == "tensorflow" else "dense",
            platform_deviations=(saturates(dtypes, device_type=_SATURATES_ON[self.backend]),
                                 *((XLA_CPU_GATHER_FLUSHES_BF16,) if self.backend == "jax" else ())),
            options=("mask_zero",),
        )

    def versions(self):
        import importlib

        backend_module = importlib.import_module(self.backend)
        return {"keras": self.keras.__version__, self.backend: backend_module.__version__}

    def runtime_settings(self):
        return {"keras_backend": self.backend, "keras_device": self._keras_device()}

    def _keras_device(self) -> str:
        # Spelled as each backend names its default devices: the torch backend compares device
        # strings, and a variable built under "cpu:0" is copied (losing its gradient) on "cpu".
        if self.backend == "torch":
            return "cpu" if self.device == "cpu" else "cuda"
        return "cpu:0" if self.device == "cpu" else "gpu:0"

    def _device_scope(self):
        return self.keras.device(self._keras_device()) if hasattr(self.keras, "device") else contextlib.nullcontext()

    # --- layers ------------------------------------------------------------------------
    def _new_layer(self, vocab: int, dim: int, dtype: str):
        # Zeros: the table is always overwritten (or passed in), so skip the random fill.
        layer = self.keras.layers.Embedding(vocab, dim, dtype=dtype, embeddings_initializer="zeros",
                                            **self.layer_options)
        layer.build((None,))
        return layer

    def configured(self, **options):
        clone = super().configured(**options)
        clone._layers = {}  # layers built with the options, not shared with the plain adapter
        return clone

    @_on_device
    def output_mask(self, weights, ids):
        if self.backend == "jax":
            return self._layer(weights.shape[0], weights.shape[1], dtype_name(weights.dtype)).compute_mask(ids)
        return weights.compute_mask(ids)

    def _table(self, layer):
        return layer.embeddings

    def _layer(self, vocab: int, dim: int, dtype: str):
        """A built layer for stateless (JAX) calls. Its own table is never used, so keep only
        the latest few: a benchmark sweep over large vocabularies must not hoard them."""
        key = (vocab, dim, dtype)
        if key not in self._layers:
            while len(self._layers) >= 2:
                self._layers.pop(next(iter(self._layers)))
            self._layers[key] = self._new_layer(vocab, dim, dtype)
        return self._layers[key]

    def _call(self, layer, ids):
        return layer(ids)

    # --- protocol ----------------------------------------------------------------------
    def _native(self, array):
        ops = self.keras.ops
        array = np.asarray(array)
        if dtype_name(array.dtype) == "bfloat16":
            tensor = ops.cast(ops.convert_to_tensor(array.astype(np.float32)), "bfloat16")
        else:
            tensor = ops.convert_to_tensor(array)
        if self.backend == "jax":  # committed: a jitted call outside the scope must stay here too
            import jax

            tensor = jax.device_put(tensor, jax.devices("cpu" if self.device == "cpu" else "gpu")[0])
        return tensor

    @_on_device
    def prepare_weights(self, weights):
        name = dtype_name(weights.dtype)
        if self.backend == "jax":
            return self._native(weights)  # stateless: the layer takes the table as an argument
        layer = self._new_layer(weights.shape[0], weights.shape[1], name)
        self._table(layer).assign(self._native(weights))
        return layer

    @_on_device
    def prepare_ids(self, ids):
        return self._native(ids)

    @_on_device
    def prepare_upstream(self, upstream):
        return self._native(upstream)

    @_on_device
    def forward(self, weights, ids):
        if self.backend == "jax":
            layer = self._layer(weights.shape[0], weights.shape[1], dtype_name(weights.dtype))
            return layer.stateless_call([weights], [], ids)[0]
        if self.backend == "torch":
            import torch

            with torch.no_grad():
                return self._call(weights, ids)
        return self._call(weights, ids)

    @_on_device
    def gradient(self, weights, ids, upstream):
        if self.backend == "jax":
            import jax

            _, pullback = jax.vjp(lambda w: self.forward(w, ids), weights)
            return pullback(upstream)[0]
        table = self._table(weights)
        if self.backend == "torch":
            table.value.grad = None
            self._call(weights, ids).backward(upstream)
            return table.value.grad
        import tensorflow as tf

        with tf.GradientTape() as tape:
            out = self._call(weights, ids)
        return tape.gradient(out, table.value, output_gradients=upstream)

    def is_sparse(self, gradient):
        if self.backend != "tensorflow":
            return False
        import tensorflow as tf

        return isinstance(gradient, tf.IndexedSlices)

    def to_numpy(self, value):
        if self.backend == "tensorflow":
            import tensorflow as tf

            if isinstance(value, tf.IndexedSlices):
                value = tf.convert_to_tensor(value)
        ops = self.keras.ops
        if hasattr(value, "dtype") and "bfloat16" in str(value.dtype):
            return ops.convert_to_numpy(ops.cast(value, "float32")).astype(np_dtype("bfloat16"))
        return ops.convert_to_numpy(value)

    def table_of(self, weights):
        if self.backend == "jax":
            return self.to_numpy(weights)
        return self.to_numpy(self._table(weights).value)

    def synchronize(self, value):
        if self.backend == "jax":
            import jax

            jax.block_until_ready(value)
        elif self.device != "cpu" and self.backend == "torch":
            import torch

            torch.cuda.synchronize()
        elif self.device != "cpu":
            import tensorflow as tf

            tf.test.experimental.sync_devices()

    def compile(self, fn):
        if self.backend == "jax":
            import jax

            return jax.jit(fn)
        if self.backend == "tensorflow":
            import tensorflow as tf

            return tf.function(fn, reduce_retracing=True)
        return fn


class KerasOneHotDense(KerasEmbedding):
    """``Dense(D, use_bias=False)(keras.ops.one_hot(ids, V))`` with W as the Dense kernel.

    Dense requires inputs of rank >= 2, so ids are flattened to a batch of one-hot rows and
    the output reshaped to ids.shape + (D,), as a model would do for any id shape."""

    variant = "onehot"

    def _declare(self) -> Declared:
        index_dtypes, negative, oob = _ONEHOT_IDS[self.backend]
        deviations = dict(JAX_ONEHOT_NARROW_IOTA) if self.backend == "jax" else {}  # ops.one_hot is jax's
        if self.backend == "torch":
            deviations.update({c: _FLOAT64_DEMOTED for c in (
                "forward[float64]", "gradient[float64]", "subnormals_preserved[float64]")})
        tf32 = self.device != "cpu" and self.backend in ("tensorflow", "jax")
        return Declared(
            weight_dtypes=_WEIGHT_DTYPES[self.backend], index_dtypes=index_dtypes,
            negative_index=negative, out_of_range=oob, gradient="dense",
            matmul_precision="tf32" if tf32 else "float32", deviations=deviations,
            platform_deviations=onehot_rules(_FLUSHING_MATMULS[self.backend],
                                             negative_zero_device=_NEGATIVE_ZERO_LOST_ON[self.backend]),
        )

    def _new_layer(self, vocab: int, dim: int, dtype: str):
        layer = self.keras.layers.Dense(dim, use_bias=False, dtype=dtype, kernel_initializer="zeros")
        layer.build((None, vocab))
        layer.vocab = vocab
        return layer

    def _table(self, layer):
        return layer.kernel

    def _one_hot_rows(self, ids, vocab: int, dtype):
        ops = self.keras.ops
        return ops.one_hot(ops.reshape(ids, (-1,)), vocab, dtype=dtype)

    def _unflatten(self, out, ids):
        return self.keras.ops.reshape(out, tuple(ids.shape) + (out.shape[-1],))

    def _call(self, layer, ids):
        return self._unflatten(layer(self._one_hot_rows(ids, layer.vocab, layer.dtype)), ids)

    @_on_device
    def forward(self, weights, ids):
        if self.backend != "jax":
            return super().forward(weights, ids)
        layer = self._layer(weights.shape[0], weights.shape[1], dtype_name(weights.dtype))
        one_hot = self._one_hot_rows(ids, weights.shape[0], weights.dtype)
        return self._unflatten(layer.stateless_call([weights], [], one_hot)[0], ids)


_KEPT_TABLE_ELEMENTS = 1 << 22


@functools.cache
def _model_classes(keras):
    """(model, loss) classes for the compiled adapters, defined once: dynamo guards a compiled
    step on its model's class, so a class per model would recompile every step."""

    class Lookup(keras.Model):
        def __init__(self, layer, call):
            super().__init__()
            self.lookup, self._lookup_call = layer, call

        def call(self, ids):
            return self._lookup_call(self.lookup, ids)

    class UpstreamDot(keras.losses.Loss):
        def call(self, upstream, out):
            return keras.ops.sum(upstream * out)

    return Lookup, UpstreamDot


class _JitCompiled:
    """The layer inside a ``keras.Model`` compiled with ``jit_compile=True``, run as a Keras user
    runs it: the forward is ``predict_on_batch`` and the gradient one ``train_on_batch`` step of
    SGD(learning_rate=1) on a zero table with the loss ``sum(output * upstream)`` (computed in the
    table's dtype), so the table after the step is exactly minus the gradient (0 - 1 * g). Keras
    compiles those steps with the backend's compiler: tf.function(jit_compile=True) (XLA),
    jax.jit, torch.compile (inductor). The ids go in as a batch of one example (any rank, 0-d
    included): Keras' torch train step specialises on the batch size, so a batch axis that
    followed the ids' first dimension would recompile for every new length.

    As in training, one model serves every table of its shape and dtype (and id rank): a prepared
    table is a tensor that is loaded into the model's variable when a call needs it. A model per table
    would make every table a recompile (a compiled step is specific to its model)."""

    mode = "jit"
    untimed_passes = {"forward_backward": "the gradient is read from an SGD step on a table the adapter first "
                                          "zeroes and then negates: two whole-table passes a training step does "
                                          "not make"}

    def __init__(self, backend: str, device: str = "cpu"):
        super().__init__(backend, device)
        suffix = "" if device == "cpu" else f"-{device}"
        self.eager_twin = f"keras-{backend}-{self.variant}{suffix}"
        self.id = f"keras-{backend}-{self.variant}-jit{suffix}"
        self.gather_twin = f"keras-{backend}-gather-jit{suffix}"
        if backend == "torch":
            import torch

            from backends.torch_backend import allow_recompiles

            allow_recompiles(torch)  # else past 8 shapes dynamo runs the steps eagerly, unreported
        self._models: dict = {}

    def _declare(self) -> Declared:
        # The gradient is read from the table the optimizer updated (a dense array), so its
        # representation is not observed. The layer options and their mask are the eager
        # adapter's business (a model's predict returns no mask). Observed (Keras 3.15,
        # TensorFlow 2.21, CPU): under XLA the gather clamps ids >= V to the last row where eager
        # Embedding raises; Keras has already wrapped negative ids (i + V), so those still read
        # from the end.
        declared = replace(super()._declare(), gradient="dense", options=(), not_applicable={
            "gradient_representation": "the gradient is read from the table an SGD step updated, which does not "
                                       "show the representation the optimizer received"})
        if self.backend == "tensorflow" and self.variant == "gather":
            declared = replace(declared, out_of_range="clamp")
        if self.backend == "torch" and self.variant == "gather":
            # Inductor's backward, as for torch-gather-compile: float32 accumulation (no
            # saturation) with atomic adds from every CPU thread (observed, torch 2.13).
            kept = tuple(d for d in declared.platform_deviations if "low_precision_accumulation" not in d.checks)
            declared = replace(declared, platform_deviations=(*kept, INDUCTOR_CPU_ATOMIC_BACKWARD))
        return declared

    def _key(self, table, ids) -> tuple:
        """A model per table shape and dtype and per id rank, as a model's Input fixes the rank:
        Keras' TensorFlow trainer traces with reduce_retracing, which after a change of rank
        gives the ids an unknown rank, and Dense cannot take that."""
        return (*table.shape, self.keras.backend.standardize_dtype(table.dtype), len(ids.shape))

    def _model(self, table, ids):
        """The compiled model for this table and ids, holding this table."""
        key = self._key(table, ids)
        vocab, dim, dtype, _ = key
        if key not in self._models:
            # Keep small models (the checks come back to a shape; each new model recompiles),
            # but not a benchmark sweep's large tables.
            while len(self._models) >= 2 and sum(np.prod(k[:2]) for k in self._models) > _KEPT_TABLE_ELEMENTS:
                self._models.pop(next(iter(self._models)))
            self._models[key] = [self._new_model(self._new_layer(vocab, dim, dtype)), None]
        entry = self._models[key]
        if entry[1] is not table:
            # A copy: Keras' JAX train step donates the variable's buffer to the compiled step.
            self._table(entry[0].lookup).assign(self.keras.ops.copy(table))
            entry[1] = table
        return entry[0]

    def _new_model(self, layer):
        model = _model_classes(self.keras)[0](layer, self._call)
        # Keras losses compute in float32 unless told: a float64 upstream would be rounded.
        model.compile(optimizer=self.keras.optimizers.SGD(learning_rate=1.0),
                      loss=_model_classes(self.keras)[1](dtype=layer.dtype), jit_compile=True)
        return model

    @_on_device
    def prepare_weights(self, weights):
        return self._native(weights)

    @_on_device
    def forward(self, table, ids):
        return self._model(table, ids).predict_on_batch(self.keras.ops.expand_dims(ids, 0))[0]

    @_on_device
    def gradient(self, table, ids, upstream):
        ops = self.keras.ops
        model = self._model(table, ids)
        variable = self._table(model.lookup)
        variable.assign(ops.zeros(variable.shape, dtype=variable.dtype))
        self._models[self._key(table, ids)][1] = None  # the variable holds the step's result now
        model.train_on_batch(ops.expand_dims(ids, 0), ops.expand_dims(upstream, 0))
        return ops.negative(ops.convert_to_tensor(variable.value))

    def output_mask(self, weights, ids):
        raise NotImplementedError("a compiled model's predict returns no mask")

    def table_of(self, table):
        return self.to_numpy(table)

    def compile(self, fn):
        return fn  # Keras compiled the steps: the benchmark times predict/train_on_batch itself


class KerasEmbeddingJit(_JitCompiled, KerasEmbedding):
    """``keras.layers.Embedding`` in a model compiled with ``jit_compile=True``."""


class KerasOneHotDenseJit(_JitCompiled, KerasOneHotDense):
    """``Dense(use_bias=False)(keras.ops.one_hot(ids, V))`` in a model compiled with
    ``jit_compile=True``. With the batch axis the one-hot is of rank >= 2, which Dense takes as
    it is (no flattening: a traced function may not know the ids' rank)."""

    def _call(self, layer, ids):
        return layer(self.keras.ops.one_hot(ids, layer.vocab, dtype=layer.dtype))


def _factory(cls, backend):
    def make(device: str = "cpu"):
        return cls(backend, device)

    return make


gather_on_tensorflow = _factory(KerasEmbedding, "tensorflow")
onehot_on_tensorflow = _factory(KerasOneHotDense, "tensorflow")
gather_on_jax = _factory(KerasEmbedding, "jax")
onehot_on_jax = _factory(KerasOneHotDense, "jax")
gather_on_torch = _factory(KerasEmbedding, "torch")
onehot_on_torch = _factory(KerasOneHotDense, "torch")
gather_jit_on_tensorflow = _factory(KerasEmbeddingJit, "tensorflow")
onehot_jit_on_tensorflow = _factory(KerasOneHotDenseJit, "tensorflow")
gather_jit_on_jax = _factory(KerasEmbeddingJit, "jax")
onehot_jit_on_jax = _factory(KerasOneHotDenseJit, "jax")
gather_jit_on_torch = _factory(KerasEmbeddingJit, "torch")
onehot_jit_on_torch = _factory(KerasOneHotDenseJit, "torch")


# Keras fixes its backend at import: one framework (one process) per backend, with that
# backend's runtime hooks.
_TORCH_RECOMPILES = (
    "opt-in: Keras' torch.compile of its train and predict steps guards on the model's layers and "
    "variables, so every new table shape is a new model and a new inductor compile: about 20 minutes "
    "per adapter for the ci profile on 2 cores")


def _framework(backend: str, runtime, gather, onehot, gather_jit, onehot_jit, opt_in=None) -> Framework:
    adapters = {f"keras-{backend}-gather": gather, f"keras-{backend}-onehot": onehot,
                f"keras-{backend}-gather-jit": gather_jit, f"keras-{backend}-onehot-jit": onehot_jit}
    return Framework(name=f"keras-{backend}", adapters=adapters, devices=("cpu", "cuda"),
                     env={"KERAS_BACKEND": backend}, opt_in=opt_in or {}, runtime=runtime)


ON_TENSORFLOW = _framework("tensorflow", tensorflow_backend.RUNTIME, gather_on_tensorflow, onehot_on_tensorflow,
                           gather_jit_on_tensorflow, onehot_jit_on_tensorflow)
ON_JAX = _framework("jax", jax_backend.RUNTIME, gather_on_jax, onehot_on_jax, gather_jit_on_jax, onehot_jit_on_jax)
ON_TORCH = _framework("torch", torch_backend.RUNTIME, gather_on_torch, onehot_on_torch, gather_jit_on_torch,
                      onehot_jit_on_torch,
                      opt_in={"keras-torch-gather-jit": _TORCH_RECOMPILES, "keras-torch-onehot-jit": _TORCH_RECOMPILES})
