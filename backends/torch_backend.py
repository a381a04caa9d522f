"""PyTorch: ``torch.nn.Embedding`` (dense and ``sparse=True`` gradients) and one-hot @ W."""

from __future__ import annotations

import numpy as np

from backends._common import onehot_rules, saturates
from harness.adapter import Declared, EmbeddingAdapter
from harness.dtypes import dtype_name
from harness.errors import FrameworkUnavailable

_WEIGHT_DTYPES = ("float16", "bfloat16", "float32", "float64")


def _torch():
    try:
        import torch
    except ImportError:
        raise FrameworkUnavailable(
            "torch is not installed: pip install 'embedding-harness[torch]'") from None
    return torch


class TorchEmbedding(EmbeddingAdapter):
    framework = "torch"
    variant = "gather"
    sparse = False

    def __init__(self, device: str = "cpu"):
        self.torch = torch = _torch()
        if device == "cuda" and not torch.cuda.is_available():
            raise FrameworkUnavailable("torch sees no CUDA device (CPU-only build or no GPU)")
        self.device = device
        kind = "sparse" if self.sparse else self.variant
        self.id = f"torch-{kind}" + ("" if device == "cpu" else f"-{device}")
        self.gather_twin = "torch-gather" + ("" if device == "cpu" else f"-{device}")
        self.declared = self._declare()

    def _declare(self) -> Declared:
        # On CUDA a bad id trips a device-side assert (pytorch/pytorch#29966): an exception, so
        # "raise", observed in a child process (harness/isolation.py). The dense backward on
        # CUDA accumulates in float32 (embedding_dense_backward); the sparse one does not.
        return Declared(
            weight_dtypes=_WEIGHT_DTYPES, index_dtypes=("int32", "int64"),
            negative_index="raise", out_of_range="raise",
            gradient="sparse" if self.sparse else "dense",
            platform_deviations=(saturates(_WEIGHT_DTYPES, device_type=None if self.sparse else "cpu"),),
        )

    def versions(self):
        v = {"torch": self.torch.__version__}
        if self.device == "cuda":
            v["cuda"] = str(self.torch.version.cuda)
        return v

    def runtime_settings(self):
        t = self.torch
        s = {"num_threads": t.get_num_threads(),
             "float32_matmul_precision": t.get_float32_matmul_precision()}
        if self.device == "cuda":
            s["cuda_matmul_allow_tf32"] = t.backends.cuda.matmul.allow_tf32
            s["gpu"] = t.cuda.get_device_name()
        return s

    def _tensor(self, array: np.ndarray):
        t = self.torch
        if dtype_name(array.dtype) == "bfloat16":  # torch.from_numpy knows no ml_dtypes type
            return t.from_numpy(array.astype(np.float32)).to(self.device, t.bfloat16)
        return t.from_numpy(np.asarray(array, order="C")).to(self.device)  # keeps 0-d arrays 0-d

    def prepare_weights(self, weights):
        w = self._tensor(weights)
        module = self.torch.nn.Embedding(w.shape[0], w.shape[1], sparse=self.sparse,
                                         device=self.device, dtype=w.dtype)
        with self.torch.no_grad():
            module.weight.copy_(w)
        return module

    def prepare_upstream(self, upstream):
        return self._tensor(upstream)

    def prepare_ids(self, ids):
        return self._tensor(np.asarray(ids))

    def forward(self, module, ids):
        with self.torch.no_grad():
            return module(ids)

    def output_buffer(self, module, ids):
        if self.variant != "gather":
            return None
        weight = module.weight
        return self.torch.empty(tuple(ids.shape) + (weight.shape[1],), dtype=weight.dtype, device=weight.device)

    def forward_into(self, module, ids, out):
        # nn.Embedding's forward is an index_select of the weight's rows; here into ``out``.
        with self.torch.no_grad():
            self.torch.index_select(module.weight, 0, ids.reshape(-1), out=out.view(-1, out.shape[-1]))
        return out

    def gradient(self, module, ids, upstream):
        module.weight.grad = None
        module(ids).backward(upstream)
        return module.weight.grad

    def is_sparse(self, gradient):
        return bool(gradient.is_sparse)

    def to_numpy(self, value):
        t = self.torch
        if isinstance(value, t.nn.Module):
            value = value.weight
        value = value.detach()
        if value.is_sparse:
            value = value.to_dense()
        value = value.cpu()
        if value.dtype == t.bfloat16:
            from harness.dtypes import np_dtype

            return value.float().numpy().astype(np_dtype("bfloat16"))
        return value.numpy()

    def synchronize(self, value):
        if self.device == "cuda":
            self.torch.cuda.synchronize()


class TorchSparseEmbedding(TorchEmbedding):
    """``nn.Embedding(sparse=True)``: the gradient is an uncoalesced sparse COO tensor."""

    sparse = True


class TorchOneHot(TorchEmbedding):
    """``F.one_hot(ids, V).to(W.dtype) @ W``: the code a user would write.

    F.one_hot takes int64 ids only and raises on negative or out-of-range ids (CPU)."""

    variant = "onehot"

    def _declare(self) -> Declared:
        # torch's matmuls keep subnormals (float32, and bfloat16 through oneDNN), as
        # subnormals_preserved observes on the CPUs and GPUs of results/.
        return Declared(
            weight_dtypes=_WEIGHT_DTYPES, index_dtypes=("int64",),
            negative_index="raise", out_of_range="raise", gradient="dense",
            matmul_precision="float32", platform_deviations=onehot_rules(),
        )

    def prepare_weights(self, weights):
        return self._tensor(weights)

    def _one_hot(self, ids, weights):
        return self.torch.nn.functional.one_hot(ids, weights.shape[0]).to(weights.dtype)

    def forward(self, weights, ids):
        with self.torch.no_grad():
            return self._one_hot(ids, weights) @ weights

    def gradient(self, weights, ids, upstream):
        w = weights.detach().requires_grad_(True)
        (self._one_hot(ids, w) @ w).backward(upstream)
        return w.grad


def gather(device: str = "cpu"):
    return TorchEmbedding(device)


def sparse_gather(device: str = "cpu"):
    return TorchSparseEmbedding(device)


def onehot(device: str = "cpu"):
    return TorchOneHot(device)
