"""PyTorch: ``torch.nn.Embedding`` (dense and ``sparse=True`` gradients) and one-hot @ W, eager
and under ``torch.compile`` (inductor)."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import replace

import numpy as np

from backends._common import INDUCTOR_CPU_ATOMIC_BACKWARD, builtin_ids, onehot_rules, saturates
from harness.adapter import COMPILE_CACHE_ENV, BagDeclared, Declared, Deviates, EmbeddingAdapter
from harness.bench.membw import event_copy_bandwidth
from harness.dtypes import dtype_name
from harness.errors import FrameworkUnavailable
from harness.framework import DeviceMemoryProbe, Framework, Runtime

_WEIGHT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# nn.Embedding's options (max_norm comes with norm_type); a one-hot matmul has none.
_EMBEDDING_OPTIONS = ("padding_idx", "max_norm", "scale_grad_by_freq")
_ALL_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
# Observed with torch 2.11 on an H100 (the CPU, torch 2.13, does neither): an empty id tensor
# fails with scale_grad_by_freq and with max_norm; and with norm_type=3 a row of negative values
# whose 3-norm is over max_norm is left unscaled.
CUDA_EMPTY_SCALE_GRAD_BY_FREQ = Deviates(
    ("option_scale_grad_by_freq",), "on CUDA, backward with scale_grad_by_freq=True over an empty id tensor raises "
    "'CUDA error: invalid argument' (the CPU returns a zero gradient)", device_type="cuda")
CUDA_MAX_NORM = Deviates(
    ("option_max_norm",), "on CUDA, max_norm with an empty id tensor raises 'CUDA error: invalid argument', and with "
    "norm_type=3 the row [-0.432] (3-norm 0.432 > max_norm 0.382) is left unscaled; the CPU scales it",
    device_type="cuda")
# Observed with torch 2.13 (CPU): what sparse=True does with the other options.
_SPARSE_OPTION_LIMITS = {
    "option_padding_idx": "with sparse=True and padding_idx, backward raises IndexError ('too many indices for "
                          "tensor of dimension 0') for a 0-d id tensor; 1-d and larger id arrays are right",
    "option_scale_grad_by_freq": "torch refuses the combination: backward raises RuntimeError 'embedding_backward: "
                                 "scale_grad_by_freq not supported with sparse gradients'",
}


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
    kind: str | None = None  # the id's middle part when it is not the variant ("sparse", "bag")
    twin_kind = "gather"

    def __init__(self, device: str = "cpu"):
        self.torch = torch = _torch()
        if device == "cuda" and not torch.cuda.is_available():
            raise FrameworkUnavailable("torch sees no CUDA device (CPU-only build or no GPU)")
        self.device = device
        self.id, self.gather_twin, self.eager_twin = builtin_ids("torch", self.kind or self.variant, self.mode,
                                                                 device, self.twin_kind)
        self.declared = self._declare()

    def _declare(self) -> Declared:
        # On CUDA a bad id trips a device-side assert (pytorch/pytorch#29966): an exception, so
        # "raise", observed in a child process (harness/isolation.py). The dense backward on
        # CUDA accumulates in float32 (embedding_dense_backward); the sparse one does not.
        return Declared(
            weight_dtypes=_WEIGHT_DTYPES, index_dtypes=("int32", "int64"),
            negative_index="raise", out_of_range="raise",
            gradient="sparse" if self.sparse else "dense",
            platform_deviations=(saturates(_WEIGHT_DTYPES, device_type=None if self.sparse else "cpu"), CUDA_MAX_NORM,
                                 *(() if self.sparse else (CUDA_EMPTY_SCALE_GRAD_BY_FREQ,))),
            options=_EMBEDDING_OPTIONS, deviations=_SPARSE_OPTION_LIMITS if self.sparse else {},
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
                                         device=self.device, dtype=w.dtype, **self.layer_options)
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
    kind = "sparse"


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

    def _product(self, weights, ids):
        return self._one_hot(ids, weights) @ weights

    def forward(self, weights, ids):
        with self.torch.no_grad():
            return self._product(weights, ids)

    def gradient(self, weights, ids, upstream):
        w = weights.detach().requires_grad_(True)
        self._product(w, ids).backward(upstream)
        return w.grad


def prepare_compile(torch) -> None:
    """What every ``torch.compile`` here needs before its first call.

    Room in dynamo for every shape, rank and dtype the checks draw: past its recompile limit
    (8 by default) dynamo silently runs the function eagerly; that would test the eager kernels
    under a compiled adapter's name, so the limit is raised and hitting it raises.

    Inductor's on-disk cache in the conformance run's shared folder (as JAX's), where one is
    given and ``TORCHINDUCTOR_CACHE_DIR`` is not already set: the run compiles from scratch, as a
    new machine or CI does, instead of reusing what an earlier run left in the temp folder, and
    its processes share what they compiled."""
    folder = os.environ.get(COMPILE_CACHE_ENV)
    if folder:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(folder, "inductor"))
    config = torch._dynamo.config
    config.recompile_limit = max(config.recompile_limit, 1024)
    config.accumulated_recompile_limit = max(config.accumulated_recompile_limit, 4096)
    config.fail_on_recompile_limit_hit = True


def _compiler(torch):
    """``torch.compile`` (dynamic shapes) with room for every recompile the checks cause."""
    prepare_compile(torch)
    return functools.partial(torch.compile, dynamic=True)


class TorchCompiledEmbedding(TorchEmbedding):
    """``torch.compile`` (inductor) of nn.Embedding's forward, ``F.embedding(ids, weight)``,
    for inference (no_grad) and for training (the compiled backward)."""

    mode = "compile"

    def __init__(self, device: str = "cpu"):
        super().__init__(device)
        functional = self.torch.nn.functional
        self._compiled = _compiler(self.torch)(
            lambda weight, ids, padding_idx, max_norm, norm_type, scale_grad_by_freq: functional.embedding(
                ids, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq))

    def _declare(self) -> Declared:
        # On the CPU (torch 2.13) bad ids fail inductor's bounds check ("index out of bounds: 0 <= tmp
        # < V"), a RuntimeError as eager's IndexError is. On CUDA (torch 2.11, an H100) the compiled
        # gather reads a negative id from the end of the table, takes ids of every integer dtype, and
        # still asserts on ids >= V. Unlike eager, the compiled backward accumulates float16/bfloat16
        # duplicates in float32 (it does not saturate) and, on several CPU threads, is not bitwise
        # repeatable.
        on_gpu = self.device != "cpu"
        return Declared(weight_dtypes=_WEIGHT_DTYPES, index_dtypes=_ALL_INTS if on_gpu else ("int32", "int64"),
                        negative_index="wrap" if on_gpu else "raise", out_of_range="raise", gradient="dense",
                        platform_deviations=(INDUCTOR_CPU_ATOMIC_BACKWARD, CUDA_EMPTY_SCALE_GRAD_BY_FREQ,
                                             CUDA_MAX_NORM),
                        options=_EMBEDDING_OPTIONS)

    def _embed(self, module, ids):
        # The module's own options, so a configured adapter compiles what nn.Embedding would run.
        return self._compiled(module.weight, ids, module.padding_idx, module.max_norm, module.norm_type,
                              module.scale_grad_by_freq)

    def forward(self, module, ids):
        with self.torch.no_grad():
            return self._embed(module, ids)

    def output_buffer(self, module, ids):
        return None  # the compiled graph allocates its own output

    def gradient(self, module, ids, upstream):
        module.weight.grad = None
        self._embed(module, ids).backward(upstream)
        return module.weight.grad


class TorchCompiledOneHot(TorchOneHot):
    """``torch.compile`` (inductor) of ``F.one_hot(ids, V).to(W.dtype) @ W``."""

    mode = "compile"

    def __init__(self, device: str = "cpu"):
        super().__init__(device)
        self._product = _compiler(self.torch)(self._product)

    def _declare(self) -> Declared:
        # Compiled with torch 2.13 (CPU), one_hot accepts the ids eager F.one_hot refuses (int32,
        # uint32, uint64 and integral float32 ids); with torch 2.11 (CUDA) it refuses them as eager
        # does ("one_hot is only applicable to index tensor of type LongTensor"). Bad ids raise on
        # the CPU; on CUDA the compiled one_hot has no bounds check: they select no row (zeros).
        declared = super()._declare()
        if self.device != "cpu":
            declared = replace(declared, negative_index="zeros", out_of_range="zeros")
        accepts_more = Deviates(
            ("index_dtypes",), "torch.compile's one_hot also accepts int32, uint32, uint64 and integral float32 ids "
            "(observed with torch 2.13; torch 2.11 refuses them as eager one_hot does)", min_versions={"torch": "2.13"})
        return replace(declared, platform_deviations=(*declared.platform_deviations, accepts_more))


def gather(device: str = "cpu"):
    return TorchEmbedding(device)


def sparse_gather(device: str = "cpu"):
    return TorchSparseEmbedding(device)


def onehot(device: str = "cpu"):
    return TorchOneHot(device)


def compiled_gather(device: str = "cpu"):
    return TorchCompiledEmbedding(device)


def compiled_onehot(device: str = "cpu"):
    return TorchCompiledOneHot(device)


class TorchBag(TorchEmbedding):
    """``F.embedding_bag`` (what ``nn.EmbeddingBag`` runs): sum, mean and max bags from offsets, a
    2-D id matrix or offsets with ``include_last_offset``; per-sample weights in sum mode."""

    variant = "gather"
    kind = twin_kind = "bag"

    def _declare(self) -> Declared:
        return Declared(weight_dtypes=("float32",), index_dtypes=("int32", "int64"), gradient="dense",
                        options=("padding_idx",),
                        bags=BagDeclared(modes=("sum", "mean", "max"), per_sample_weights=True,
                                         input_forms=("matrix", "last_offset")))

    def prepare_weights(self, weights):
        return self._tensor(weights)

    def prepare_upstream(self, upstream):
        return self._tensor(upstream)

    def prepare_ids(self, bags):
        t = self.torch
        psw = None if bags.per_sample_weights is None else self._tensor(bags.per_sample_weights)
        if bags.form == "matrix":
            return self._tensor(bags.as_matrix()), None, bags.mode, psw, False
        offsets = bags.offsets if bags.form == "offsets" else np.append(bags.offsets, len(bags.ids))
        return (self._tensor(bags.ids), t.as_tensor(offsets, dtype=t.int64, device=self.device), bags.mode, psw,
                bags.form == "last_offset")

    def _bag(self, weights, native):
        ids, offsets, mode, psw, last = native
        return self.torch.nn.functional.embedding_bag(
            ids, weights, offsets, mode=mode, per_sample_weights=psw, include_last_offset=last,
            padding_idx=self.layer_options.get("padding_idx"))

    def forward(self, weights, native):
        with self.torch.no_grad():
            return self._bag(weights, native)

    def output_buffer(self, weights, native):
        return None

    def gradient(self, weights, native, upstream):
        w = weights.detach().requires_grad_(True)
        self._bag(w, native).backward(upstream)
        return w.grad


class TorchMultiHotBag(TorchBag):
    """The multi-hot twin: ``M @ W`` with M[b, i] the summed weights of id i in bag b (divided by the
    bag's length for mean), built with ``index_put_(accumulate=True)``. There is no multi-hot max."""

    variant = "onehot"
    kind = "bag-multihot"

    def _declare(self) -> Declared:
        return Declared(weight_dtypes=("float32",), index_dtypes=("int32", "int64"), gradient="dense",
                        bags=BagDeclared(modes=("sum", "mean"), per_sample_weights=True))

    def _bag(self, weights, native):
        t = self.torch
        ids, offsets, mode, psw, _ = native
        n_bags = len(offsets)
        lengths = t.diff(offsets, append=t.tensor([len(ids)], device=offsets.device))
        segment = t.repeat_interleave(t.arange(n_bags, device=offsets.device), lengths)
        values = psw if psw is not None else t.ones(len(ids), dtype=weights.dtype, device=weights.device)
        if mode == "mean":
            values = values / lengths.clamp(min=1).to(weights.dtype)[segment]
        multihot = t.zeros((n_bags, weights.shape[0]), dtype=weights.dtype, device=weights.device)
        multihot.index_put_((segment, ids.long()), values, accumulate=True)
        return multihot @ weights


def bag(device: str = "cpu"):
    return TorchBag(device)


def multihot_bag(device: str = "cpu"):
    return TorchMultiHotBag(device)


class TorchRuntime(Runtime):
    """torch's threads, CUDA events, CUDA allocator counters and device copy bandwidth."""

    name = "torch"

    def set_threads(self, threads):
        torch = sys.modules.get("torch")
        if torch is None:  # not imported in this process: nothing to set
            return None
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(threads)
        except RuntimeError:  # allowed once, before any inter-op work
            pass
        return {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}

    def device_event(self, device):
        if device != "cuda":
            return None
        torch = _torch()
        return lambda: torch.cuda.Event(enable_timing=True)

    def memory_probe(self, device):
        return _CudaMemoryProbe(_torch()) if device == "cuda" else None

    def copy_bandwidth(self, device, nbytes):
        """A ``copy_`` of an ``nbytes`` float32 buffer (2 x nbytes moved), timed by CUDA events."""
        if device != "cuda":
            return None
        torch = _torch()
        if not torch.cuda.is_available():
            return {"error": "torch sees no CUDA device"}
        props = torch.cuda.get_device_properties(0)
        info = self._timed_copy(torch, nbytes)
        torch.cuda.empty_cache()  # the buffers are gone: give their memory back to the device
        info.update(name=props.name, l2_cache_bytes=getattr(props, "L2_cache_size", None),
                    total_memory=props.total_memory, method="torch copy_, CUDA events")
        return info

    def _timed_copy(self, torch, nbytes):
        src = torch.ones(nbytes // 4, dtype=torch.float32, device="cuda")
        dst = torch.empty_like(src)
        return event_copy_bandwidth(lambda: dst.copy_(src), self.device_event("cuda"), torch.cuda.synchronize,
                                    2 * src.numel() * 4)


class _CudaMemoryProbe(DeviceMemoryProbe):
    """torch's CUDA allocator: max_memory_allocated after reset_peak_memory_stats."""

    def __init__(self, torch):
        super().__init__()
        self.torch = torch

    def start(self):
        self.torch.cuda.synchronize()
        self.torch.cuda.reset_peak_memory_stats()
        return self.torch.cuda.memory_allocated()

    def peak(self):
        self.torch.cuda.synchronize()
        return self.torch.cuda.max_memory_allocated()


RUNTIME = TorchRuntime()
FRAMEWORK = Framework(
    name="torch",
    adapters={"torch-gather": gather, "torch-sparse": sparse_gather, "torch-onehot": onehot,
              "torch-gather-compile": compiled_gather, "torch-onehot-compile": compiled_onehot,
              "torch-bag": bag, "torch-bag-multihot": multihot_bag},
    devices=("cpu", "cuda"), runtime=RUNTIME)
