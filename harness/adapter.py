"""The adapter protocol: what every embedding implementation provides to the harness.

An adapter wraps one implementation (say ``torch.nn.Embedding``) on one device. The harness
only ever talks to it through this class, so the checks and benchmarks are framework-neutral.

Native values (``prepare_*`` results, ``forward``/``gradient`` results) stay in the
framework's own types so the benchmarks can time them without conversions; ``to_numpy``
brings any of them back (densifying sparse gradients).

Declared behaviour (``Declared``) is data, not code: the conformance suite checks that what
an adapter says it does (index dtypes, negative and out-of-range ids, sparse or dense
gradient, expected deviations) is what it really does. A declaration that is not the
observed behaviour is a failure.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

# What happens to an id outside [0, vocab): observed, then compared with the declaration.
Outcome = Literal["raise", "wrap", "clamp", "nan", "zeros", "undefined"]
OUTCOMES = ("raise", "wrap", "clamp", "nan", "zeros", "undefined")
Variant = Literal["gather", "onehot"]
# Layer options a framework may offer, each with checks of its own (harness/option_checks.py),
# and the arguments that come with each: torch.nn.Embedding's padding_idx, max_norm (with
# norm_type) and scale_grad_by_freq, and keras.layers.Embedding's mask_zero.
LAYER_OPTIONS: dict[str, tuple[str, ...]] = {"padding_idx": (), "max_norm": ("norm_type",),
                                             "scale_grad_by_freq": (), "mask_zero": ()}


# A folder the processes of one conformance run share (nox -s conformance sets it): a backend
# may keep compiled programs there, so a program compiled for one adapter is not compiled
# again for the next one on the same framework. Unset: nothing is shared.
COMPILE_CACHE_ENV = "EMBEDDING_HARNESS_COMPILE_CACHE"


@dataclass(frozen=True)
class Deviates:
    """A declared deviation that holds only on some platforms, as data (after PyTorch OpInfo's
    ``DecorateInfo(..., device_type=..., dtypes=..., active_if=...)``).

    Every condition given must hold: the adapter's device type, the CPU vendor, every named
    CPU flag (as /proc/cpuinfo spells them), at least ``min_threads`` intra-op threads, and
    each package at least the version given. ``dtypes`` expands a check family
    (``subnormals_preserved``) into its per-dtype checks (``subnormals_preserved[bfloat16]``).
    Where it holds, its checks are expected to fail exactly like ``Declared.deviations``;
    where it does not, they must pass. One that holds on no committed run is reported stale.
    """

    checks: tuple[str, ...]
    reason: str
    device_type: str | None = None
    dtypes: tuple[str, ...] = ()
    cpu_vendor: str | None = None
    cpu_flags: tuple[str, ...] = ()
    min_threads: int | None = None
    min_versions: Mapping[str, str] = field(default_factory=dict)

    def check_names(self) -> tuple[str, ...]:
        if not self.dtypes:
            return tuple(self.checks)
        return tuple(f"{c}[{d}]" for c in self.checks for d in self.dtypes)

    def conditions(self) -> dict[str, Any]:
        """The conditions that are set, by name (what the results record and show)."""
        named = {"device_type": self.device_type, "cpu_vendor": self.cpu_vendor,
                 "cpu_flags": list(self.cpu_flags), "min_threads": self.min_threads,
                 "min_versions": dict(self.min_versions)}
        return {k: v for k, v in named.items() if v not in (None, [], {})}


@dataclass(frozen=True)
class BagDeclared:
    """What a bag (segment reduction) adapter claims; ``harness/bag_checks.py`` verifies each."""

    modes: tuple[str, ...] = ("sum", "mean", "max")
    # Per-sample weights (sum mode): each row scaled by its weight before the sum.
    per_sample_weights: bool = False
    # What an empty bag returns, per mode: "zeros", "nan", "-inf" (default "zeros").
    empty_bag: Mapping[str, str] = field(default_factory=dict)
    # Other spellings of the same bags it takes: "matrix" (2-D ids, one bag per row) and
    # "last_offset" (offsets with the end of the last bag appended, torch's include_last_offset).
    input_forms: tuple[str, ...] = ()

    def empty(self, mode: str) -> str:
        return self.empty_bag.get(mode, "zeros")


@dataclass(frozen=True)
class Declared:
    """What an adapter claims about itself. Every field is verified by a check."""

    weight_dtypes: tuple[str, ...] = ("float32",)
    index_dtypes: tuple[str, ...] = ("int32", "int64")
    negative_index: Outcome = "raise"
    out_of_range: Outcome = "raise"
    # "none": a forward-only implementation (an inference runtime); gradient checks are skipped.
    gradient: Literal["dense", "sparse", "none"] = "dense"
    # Matmul input precision of one-hot variants ("float32", "tf32", "bfloat16"): sets the
    # forward tolerance. Gathers copy rows, so they are always exact.
    matmul_precision: str = "float32"
    # check name -> reason. Such a check is expected to fail (strict: passing is a failure).
    deviations: Mapping[str, str] = field(default_factory=dict)
    # check name -> reason the check cannot run for this adapter (reported as skipped).
    not_applicable: Mapping[str, str] = field(default_factory=dict)
    # Deviations that hold only on some platforms (device type, CPU, threads, versions).
    platform_deviations: tuple[Deviates, ...] = ()
    # Layer options (LAYER_OPTIONS) this adapter builds its layer with when ``configured``; the
    # checks of any other option are not applicable to it.
    options: tuple[str, ...] = ()
    # Set for a bag adapter (prepare_ids takes harness.bags.Bags, forward returns one row per
    # bag): the bag checks run on it, the lookup checks are not applicable, and vice versa.
    bags: BagDeclared | None = None


class EmbeddingAdapter(ABC):
    """One embedding implementation on one device.

    Subclasses set the class attributes and implement the abstract methods. ``gradient``
    returns d(sum(forward(w, ids) * upstream))/dW, the weight gradient for that upstream.
    """

    id: str = ""
    framework: str = ""
    variant: Variant = "gather"
    device: str = "cpu"
    declared: Declared = Declared()
    # id of the gather adapter this one-hot adapter should agree with (same framework/device).
    gather_twin: str | None = None
    # How the framework runs it: "eager", or the compiler a user wraps it in ("jit" for jax.jit,
    # "xla" for tf.function(jit_compile=True), "compile" for torch.compile). A compiled adapter
    # names its eager twin, so the results can show what compiling changes.
    mode: str = "eager"
    eager_twin: str | None = None
    # How the harness loaded it (built-in id or module:factory), used in repro snippets and to
    # rebuild it in a child process.
    source: str = ""
    # Run the bad-id probes in a child process (see harness/isolation.py). None: on every
    # non-CPU device, where an out-of-range id can trip a device-side assert.
    isolate_probes: bool | None = None
    # Its gather runs on one thread whatever the thread settings (NumPy's fancy indexing): its
    # bandwidth is compared with the host's single-thread copy bandwidth.
    single_threaded: bool = False
    # The layer options ``prepare_weights`` builds with (set through ``configured``).
    layer_options: Mapping[str, Any] = {}
    # Benchmark pass ("forward", "forward_backward") -> why this adapter's timing of it would not
    # time the pass (the bench skips it with that reason).
    untimed_passes: Mapping[str, str] = {}
    # The framework's process-wide hooks (threads, device timers and memory, copy bandwidth): a
    # harness.framework.Runtime. The registry gives each adapter its framework's when it has none.
    runtime: Any = None

    @property
    def framework_label(self) -> str:
        """The framework as result tables group it; a layer API on several frameworks (Keras)
        names the one it runs on, since each runs in a process of its own."""
        return self.framework

    # --- framework plumbing ----------------------------------------------------------
    @abstractmethod
    def versions(self) -> dict[str, str]:
        """Framework name -> version string for everything this adapter runs on."""

    @abstractmethod
    def prepare_weights(self, weights: np.ndarray) -> Any:
        """Put a (vocab, dim) table on the device in the framework's own type."""

    @abstractmethod
    def prepare_ids(self, ids: np.ndarray) -> Any:
        """Put an id array on the device, keeping its dtype (the check decides which)."""

    def prepare_upstream(self, upstream: np.ndarray) -> Any:
        """Upstream gradient on the device; by default converted like the weights."""
        return self.prepare_weights(upstream)

    @abstractmethod
    def forward(self, weights: Any, ids: Any) -> Any:
        """The embedding lookup on native values."""

    def output_buffer(self, weights: Any, ids: Any) -> Any | None:
        """A buffer for ``forward_into`` to fill, or None when every call allocates its own output
        (immutable arrays: JAX, TensorFlow). Cold benchmark rows use it, so that they time rows
        coming from memory rather than the page faults of a fresh output."""
        return None

    def forward_into(self, weights: Any, ids: Any, out: Any) -> Any:
        """The lookup written into ``out`` (from ``output_buffer``); returns ``out``."""
        raise NotImplementedError(f"{self.id} offers no output buffer")

    def gradient(self, weights: Any, ids: Any, upstream: Any) -> Any:
        """Forward and backward: the weight gradient (dense or sparse, native). Forward-only
        adapters leave it out and declare ``gradient="none"``."""
        raise NotImplementedError(f"{self.id} is forward-only (declared gradient='none')")

    @abstractmethod
    def to_numpy(self, value: Any) -> np.ndarray:
        """A native value (sparse gradients densified) as a NumPy array."""

    def configured(self, **options: Any) -> EmbeddingAdapter:
        """This adapter with its layer built with ``options`` (declared ones only), e.g.
        ``adapter.configured(padding_idx=0)``; the adapter itself is left as it is."""
        offered = {arg for option in self.declared.options for arg in (option, *LAYER_OPTIONS.get(option, ()))}
        unknown = sorted(set(options) - offered)
        if unknown:
            raise ValueError(f"{self.id} offers no layer option {unknown}; it declares {list(self.declared.options)}")
        clone = copy.copy(self)
        clone.layer_options = {**self.layer_options, **options}
        return clone

    def output_mask(self, weights: Any, ids: Any) -> Any | None:
        """The mask the layer hands to the next layer (Keras' ``compute_mask``), or None."""
        return None

    def synchronize(self, value: Any) -> None:  # noqa: B027 - a no-op is the right default
        """Block until ``value`` is computed (async devices); a no-op on NumPy."""

    def table_of(self, weights: Any) -> np.ndarray:
        """The table a ``prepare_weights`` result holds now, as NumPy (to check that forward
        and gradient leave it unchanged); override when that result is a layer or module."""
        return self.to_numpy(weights)

    def is_sparse(self, gradient: Any) -> bool:
        """Whether a native gradient is a sparse representation."""
        return False

    def compile(self, fn):
        """The framework's compiled form of ``fn`` (jax.jit, tf.function) for benchmarks."""
        return fn

    def runtime_settings(self) -> dict[str, Any]:
        """Thread counts, matmul precision and similar knobs, recorded with results."""
        return {}

    # --- NumPy conveniences used by the checks ---------------------------------------
    def lookup(self, weights: np.ndarray, ids: np.ndarray) -> np.ndarray:
        w = self.prepare_weights(weights)
        return self.to_numpy(self.forward(w, self.prepare_ids(ids)))

    def weight_grad(self, weights: np.ndarray, ids: np.ndarray, upstream: np.ndarray) -> np.ndarray:
        w = self.prepare_weights(weights)
        grad = self.gradient(w, self.prepare_ids(ids), self.prepare_upstream(upstream))
        return self.to_numpy(grad)

    def lookup_and_table(self, weights: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The output and the table the layer holds after the call (max_norm renormalises it)."""
        w = self.prepare_weights(weights)
        out = self.to_numpy(self.forward(w, self.prepare_ids(ids)))
        return out, self.table_of(w)

    def mask(self, weights: np.ndarray, ids: np.ndarray) -> np.ndarray | None:
        mask = self.output_mask(self.prepare_weights(weights), self.prepare_ids(ids))
        return None if mask is None else self.to_numpy(mask)

    def describe(self) -> dict[str, Any]:
        from harness.platform import platform_rules

        d = self.declared
        return {
            "id": self.id,
            "framework": self.framework,
            "variant": self.variant,
            "mode": self.mode,
            "eager_twin": self.eager_twin,
            "device": self.device,
            "source": self.source,
            "versions": self.versions(),
            "declared": {
                "weight_dtypes": list(d.weight_dtypes),
                "index_dtypes": list(d.index_dtypes),
                "negative_index": d.negative_index,
                "out_of_range": d.out_of_range,
                "gradient": d.gradient,
                "matmul_precision": d.matmul_precision,
                "deviations": dict(d.deviations),
                "platform_deviations": platform_rules(self),
                "options": list(d.options),
                **({"bags": {"modes": list(d.bags.modes), "per_sample_weights": d.bags.per_sample_weights,
                             "empty_bag": {m: d.bags.empty(m) for m in d.bags.modes},
                             "input_forms": list(d.bags.input_forms)}} if d.bags else {}),
            },
            "runtime": self.runtime_settings(),
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"
