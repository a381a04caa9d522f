"""NumPy: the gather (fancy indexing) and one-hot @ W, both on the CPU.

The gradient accumulates in the weight dtype with ``np.add.at`` (unbuffered, so duplicate
ids add up), which is what a NumPy user would write; the float64 oracle is separate."""

from __future__ import annotations

import numpy as np

from backends._common import onehot_rules, saturates
from harness.adapter import Declared, EmbeddingAdapter
from harness.errors import FrameworkUnavailable
from harness.framework import Framework

_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def _require_cpu(device: str) -> None:
    if device != "cpu":
        raise FrameworkUnavailable(f"NumPy runs on the CPU only, not on {device!r}")


class NumpyGather(EmbeddingAdapter):
    framework = "numpy"
    variant = "gather"
    single_threaded = True  # fancy indexing and np.add.at run on one thread
    declared = Declared(
        weight_dtypes=("float16", "bfloat16", "float32", "float64"),
        index_dtypes=_INT_DTYPES,
        negative_index="wrap",
        out_of_range="raise",
        platform_deviations=(saturates(("float16", "bfloat16")),),
    )

    def __init__(self, device: str = "cpu"):
        _require_cpu(device)
        self.id = "numpy-gather"

    def versions(self):
        return {"numpy": np.__version__}

    def prepare_weights(self, weights):
        return np.asarray(weights)

    def prepare_ids(self, ids):
        return np.asarray(ids)

    def forward(self, weights, ids):
        return weights[ids]

    def output_buffer(self, weights, ids):
        return np.empty(ids.shape + weights.shape[1:], weights.dtype) if self.variant == "gather" else None

    def forward_into(self, weights, ids, out):
        # The same gather into the caller's buffer. mode="clip" because take() copies through a
        # temporary buffer in its default mode="raise" (NumPy docs); benchmark ids are in range.
        return np.take(weights, ids, axis=0, out=out, mode="clip")

    def gradient(self, weights, ids, upstream):
        grad = np.zeros_like(weights)
        np.add.at(grad, ids.reshape(-1), upstream.reshape(-1, weights.shape[1]))
        return grad

    def to_numpy(self, value):
        return np.asarray(value)


class NumpyOneHot(NumpyGather):
    """``(ids[..., None] == arange(V)) @ W``: the textbook one-hot Dense layer without bias.

    The comparison also takes float ids (a non-integral id matches no row: a zero row)."""

    variant = "onehot"
    gather_twin = "numpy-gather"
    declared = Declared(
        weight_dtypes=("float16", "float32", "float64"),
        index_dtypes=_INT_DTYPES + ("float32",),
        negative_index="zeros",
        out_of_range="zeros",
        platform_deviations=onehot_rules(),
        not_applicable={"low_precision_accumulation[bfloat16]": "no bfloat16 matmul in NumPy"},
    )

    def __init__(self, device: str = "cpu"):
        super().__init__(device)
        self.id = "numpy-onehot"

    def runtime_settings(self):
        try:
            from threadpoolctl import threadpool_info

            return {"blas": [{k: i.get(k) for k in ("internal_api", "num_threads")}
                             for i in threadpool_info()]}
        except ImportError:
            return {}

    def _one_hot(self, ids, vocab, dtype):
        return (ids[..., None] == np.arange(vocab)).astype(dtype)

    def forward(self, weights, ids):
        return self._one_hot(ids, weights.shape[0], weights.dtype) @ weights

    def gradient(self, weights, ids, upstream):
        dim = weights.shape[1]
        one_hot = self._one_hot(ids, weights.shape[0], weights.dtype).reshape(-1, weights.shape[0])
        return one_hot.T @ upstream.reshape(-1, dim)


def gather(device: str = "cpu"):
    return NumpyGather(device)


def onehot(device: str = "cpu"):
    return NumpyOneHot(device)


FRAMEWORK = Framework(name="numpy", adapters={"numpy-gather": gather, "numpy-onehot": onehot})
