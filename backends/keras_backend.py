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
_NOT_UINT64 = tuple(d for d in _ALL_INTS if d != "uint64") + ("float32",)
# Keras type promotion maps float64 to float32 except on TensorFlow ("aligned with JAX",
# keras/src/backend/common/dtypes.py BIT64_TO_BIT32_DTYPE), so ops.matmul - and Dense -
# return float32 for float64 inputs on torch.
_FLOAT64_DEMOTED = "Keras type promotion turns float64 @ float64 into float32 on the torch backend"


class _Backend:
    """What Keras does differently on one backend: the facts the declarations state, and the
    backend's own plumbing (device names, gradients, synchronisation, compiling) behind one
    interface, so the adapters below never ask which backend they run on."""

    name = ""
    weight_dtypes = ("float16", "bfloat16", "float32", "float64")
    # Embedding's own id handling (index dtypes, negative ids, ids >= V), as the index_dtypes and
    # probe checks observe it (keras-team/keras#18449 tabulates ops.take's out-of-range behaviour).
    gather_ids = (_ALL_INTS + ("float32",), "wrap", "raise")
    # keras.ops.one_hot: zeros for out-of-range ids.
    onehot_ids = (_ALL_INTS + ("float32",), "zeros", "zeros")
    sparse_gradient = False
    saturates_on: str | None = "cpu"  # where Embedding's gradient accumulates in the weight dtype
    flushing_matmuls: tuple = ()  # dtypes whose CPU matmul flushes subnormals (GPU ones keep them)
    negative_zero_lost_on: str | None = None  # where the one-hot matmul loses -0.0 (None: everywhere)
    tf32_on_gpu = False
    gather_rules: tuple = ()  # further platform deviations of the gather
    onehot_deviations: dict = {}
    # Layers called statelessly, the table passed in (JAX); else the layer holds the table.
    stateless = False

    def after_import(self) -> None:
        """Set up the backend once Keras imported it."""

    def sees_gpu(self) -> bool:
        raise NotImplementedError

    def keras_device(self, device: str) -> str:
        return "cpu:0" if device == "cpu" else "gpu:0"

    def place(self, tensor, device: str):
        return tensor

    def no_grad(self):
        return contextlib.nullcontext()

    def gradient(self, variable, call, upstream):
        """d(sum(call() * upstream)) / d(variable) for a layer that holds its table."""
        raise NotImplementedError

    def is_sparse(self, gradient) -> bool:
        return False

    def dense(self, value):
        return value

    def synchronize(self, value, device: str) -> None:
        pass

    def compile(self, fn):
        return fn

    def prepare_jit(self) -> None:
        """Before a model is compiled with jit_compile=True."""

    def jit_declared(self, declared: Declared, variant: str) -> Declared:
        """What compiling the model changes in the declarations (observed)."""
        return declared


class _OnTensorflow(_Backend):
    name = "tensorflow"
    sparse_gradient = True
    flushing_matmuls = ("float32", "bfloat16", "float64")
    tf32_on_gpu = True

    def sees_gpu(self):
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))

    def gradient(self, variable, call, upstream):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            out = call()
        return tape.gradient(out, variable.value, output_gradients=upstream)

    def is_sparse(self, gradient):
        import tensorflow as tf

        return isinstance(gradient, tf.IndexedSlices)

    def dense(self, value):
        import tensorflow as tf

        return tf.convert_to_tensor(value) if isinstance(value, tf.IndexedSlices) else value

    def synchronize(self, value, device):
        if device != "cpu":
            import tensorflow as tf

            tf.test.experimental.sync_devices()

    def compile(self, fn):
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)

    def jit_declared(self, declared, variant):
        # Observed (Keras 3.15, TensorFlow 2.21, CPU): under XLA the gather clamps ids >= V to the
        # last row where eager Embedding raises; Keras has already wrapped negative ids (i + V).
        return replace(declared, out_of_range="clamp") if variant == "gather" else declared


class _OnJax(_Backend):
    name = "jax"
    weight_dtypes = ("float16", "bfloat16", "float32")  # x64 off: float64 would become float32
    gather_ids = (_ALL_INTS + ("float32",), "wrap", "nan")
    saturates_on = None
    flushing_matmuls = ("float32", "bfloat16")
    negative_zero_lost_on = "cpu"  # cuBLAS under XLA keeps it
    tf32_on_gpu = True
    gather_rules = (XLA_CPU_GATHER_FLUSHES_BF16,)
    onehot_deviations = JAX_ONEHOT_NARROW_IOTA  # ops.one_hot is jax.nn.one_hot
    stateless = True

    def after_import(self):
        import jax

        jax_backend.share_compiled_programs(jax)

    def sees_gpu(self):
        import jax

        return any(d.platform == "gpu" for d in jax.devices())

    def place(self, tensor, device):
        import jax

        # committed: a jitted call outside the device scope must stay on this device too
        return jax.device_put(tensor, jax.devices("cpu" if device == "cpu" else "gpu")[0])

    def synchronize(self, value, device):
        import jax

        jax.block_until_ready(value)

    def compile(self, fn):
        import jax

        return jax.jit(fn)


class _OnTorch(_Backend):
    name = "torch"
    gather_ids = (_NOT_UINT64, "wrap", "raise")
    onehot_ids = (_NOT_UINT64, "zeros", "raise")  # the torch backend's one_hot raises for ids >= V
    onehot_deviations = {c: _FLOAT64_DEMOTED for c in (
        "forward[float64]", "gradient[float64]", "subnormals_preserved[float64]")}

    def sees_gpu(self):
        import torch

        return torch.cuda.is_available()

    def keras_device(self, device):
        # The torch backend compares device strings, and a variable built under "cpu:0" is copied
        # (losing its gradient) on "cpu".
        return "cpu" if device == "cpu" else "cuda"

    def no_grad(self):
        import torch

        return torch.no_grad()

    def gradient(self, variable, call, upstream):
        variable.value.grad = None
        call().backward(upstream)
        return variable.value.grad

    def synchronize(self, value, device):
        if device != "cpu":
            import torch

            torch.cuda.synchronize()

    def prepare_jit(self):
        import torch

        torch_backend.prepare_compile(torch)  # else past 8 shapes dynamo runs the steps eagerly, unreported

    def jit_declared(self, declared, variant):
        if variant != "gather":
            return declared
        # Inductor's backward, as for torch-gather-compile: float32 accumulation (no saturation)
        # with atomic adds from every CPU thread (observed, torch 2.13).
        kept = tuple(d for d in declared.platform_deviations if "low_precision_accumulation" not in d.checks)
        return replace(declared, platform_deviations=(*kept, INDUCTOR_CPU_ATOMIC_BACKWARD))


_BACKENDS = {b.name: b for b in (_OnTensorflow(), _OnJax(), _OnTorch())}


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
    _BACKENDS[backend].after_import()
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
        self.on = _BACKENDS[backend]
        self.device = device
        if device != "cpu":
            self._require_gpu()
        suffix = "" if device == "cpu" else f"-{device}"
        self.id = f"keras-{backend}-{self.variant}{suffix}"
        self.gather_twin = f"keras-{backend}-gather{suffix}"
        self._layers: dict = {}
        self.declared = self._declare()

    def _require_gpu(self):
        if not self.on.sees_gpu():
            raise FrameworkUnavailable(f"keras on {self.backend} sees no GPU")

    def _declare(self) -> Declared:
        index_dtypes, negative, oob = self.on.gather_ids
        dtypes = self.on.weight_dtypes
        return Declared(
            weight_dtypes=dtypes, index_dtypes=index_dtypes, negative_index=negative,
            out_of_range=oob, gradient="sparse" if self.on.sparse_gradient else "dense",
            platform_deviations=(saturates(dtypes, device_type=self.on.saturates_on), *self.on.gather_rules),
            options=("mask_zero",),
        )

    def versions(self):
        import importlib

        backend_module = importlib.import_module(self.backend)
        return {"keras": self.keras.__version__, self.backend: backend_module.__version__}

    def runtime_settings(self):
        return {"keras_backend": self.backend, "keras_device": self._keras_device()}

    def _keras_device(self) -> str:
        return self.on.keras_device(self.device)  # spelled as each backend names its devices

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
        if self.on.stateless:
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
        return self.on.place(tensor, self.device)

    @_on_device
    def prepare_weights(self, weights):
        name = dtype_name(weights.dtype)
        if self.on.stateless:
            return self._native(weights)  # the layer takes the table as an argument
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
        if self.on.stateless:
            layer = self._layer(weights.shape[0], weights.shape[1], dtype_name(weights.dtype))
            return layer.stateless_call([weights], [], ids)[0]
        with self.on.no_grad():
            return self._call(weights, ids)

    @_on_device
    def gradient(self, weights, ids, upstream):
        if self.on.stateless:  # the vector-Jacobian product of the stateless forward (JAX)
            import jax

            _, pullback = jax.vjp(lambda w: self.forward(w, ids), weights)
            return pullback(upstream)[0]
        return self.on.gradient(self._table(weights), lambda: self._call(weights, ids), upstream)

    def is_sparse(self, gradient):
        return self.on.is_sparse(gradient)

    def to_numpy(self, value):
        value = self.on.dense(value)
        ops = self.keras.ops
        if hasattr(value, "dtype") and "bfloat16" in str(value.dtype):
            return ops.convert_to_numpy(ops.cast(value, "float32")).astype(np_dtype("bfloat16"))
        return ops.convert_to_numpy(value)

    def table_of(self, weights):
        if self.on.stateless:
            return self.to_numpy(weights)
        return self.to_numpy(self._table(weights).value)

    def synchronize(self, value):
        self.on.synchronize(value, self.device)

    def compile(self, fn):
        return self.on.compile(fn)


class KerasOneHotDense(KerasEmbedding):
    """``Dense(D, use_bias=False)(keras.ops.one_hot(ids, V))`` with W as the Dense kernel.

    Dense requires inputs of rank >= 2, so ids are flattened to a batch of one-hot rows and
    the output reshaped to ids.shape + (D,), as a model would do for any id shape."""

    variant = "onehot"

    def _declare(self) -> Declared:
        index_dtypes, negative, oob = self.on.onehot_ids
        tf32 = self.device != "cpu" and self.on.tf32_on_gpu
        return Declared(
            weight_dtypes=self.on.weight_dtypes, index_dtypes=index_dtypes,
            negative_index=negative, out_of_range=oob, gradient="dense",
            matmul_precision="tf32" if tf32 else "float32", deviations=dict(self.on.onehot_deviations),
            platform_deviations=onehot_rules(self.on.flushing_matmuls,
                                             negative_zero_device=self.on.negative_zero_lost_on),
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
        if not self.on.stateless:
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
        self.on.prepare_jit()
        self._models: dict = {}

    def _declare(self) -> Declared:
        # The gradient is read from the table the optimizer updated (a dense array), so its
        # representation is not observed. The layer options and their mask are the eager
        # adapter's business (a model's predict returns no mask).
        declared = replace(super()._declare(), gradient="dense", options=(), not_applicable={
            "gradient_representation": "the gradient is read from the table an SGD step updated, which does not "
                                       "show the representation the optimizer received"})
        return self.on.jit_declared(declared, self.variant)

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
