"""Finding adapters: built-ins, installed plug-ins, and ``EMBEDDING_HARNESS_ADAPTERS``.

Three doors, one list:
1. built-in adapters from ``backends/`` (ids like ``torch-gather``),
2. installed packages that declare the entry-point group ``embedding_harness.adapters``,
3. ``EMBEDDING_HARNESS_ADAPTERS``: comma-separated built-in ids, glob patterns over them
   (``keras-jax-*``) and ``module:factory`` names. When set it also *selects*: only what it
   names is run. Without it every built-in runs except the opt-in ones (``OPT_IN``).

A factory returns one adapter or a list of them. An adapter whose framework is missing is
returned as a ``Slot`` with a skip reason, never dropped silently and never an error.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
import traceback
from dataclasses import dataclass
from importlib import metadata

from harness.adapter import EmbeddingAdapter
from harness.checks import validate_declaration
from harness.errors import FrameworkUnavailable, HarnessError, UnknownAdapter

ENV_VAR = "EMBEDDING_HARNESS_ADAPTERS"
ENTRY_POINT_GROUP = "embedding_harness.adapters"

# Built-in adapter id -> "module:factory". Each factory takes the device name.
BUILTIN: dict[str, str] = {
    "numpy-gather": "backends.numpy_backend:gather",
    "numpy-onehot": "backends.numpy_backend:onehot",
    "torch-gather": "backends.torch_backend:gather",
    "torch-sparse": "backends.torch_backend:sparse_gather",
    "torch-onehot": "backends.torch_backend:onehot",
    "torch-gather-compile": "backends.torch_backend:compiled_gather",
    "torch-onehot-compile": "backends.torch_backend:compiled_onehot",
    "torch-bag": "backends.torch_backend:bag",
    "torch-bag-multihot": "backends.torch_backend:multihot_bag",
    "tensorflow-gather": "backends.tensorflow_backend:gather",
    "tensorflow-onehot": "backends.tensorflow_backend:onehot",
    "tensorflow-gather-xla": "backends.tensorflow_backend:xla_gather",
    "tensorflow-onehot-xla": "backends.tensorflow_backend:xla_onehot",
    "tensorflow-bag": "backends.tensorflow_backend:sparse_bag",
    "tensorflow-bag-safe": "backends.tensorflow_backend:safe_sparse_bag",
    "tensorflow-bag-multihot": "backends.tensorflow_backend:multihot_bag",
    "jax-gather": "backends.jax_backend:gather",
    "jax-onehot": "backends.jax_backend:onehot",
    "jax-gather-jit": "backends.jax_backend:jit_gather",
    "jax-onehot-jit": "backends.jax_backend:jit_onehot",
    "jax-bag": "backends.jax_backend:segment_bag",
    "jax-bag-multihot": "backends.jax_backend:multihot_bag",
    "flax-gather": "backends.jax_backend:flax_embed",
    "keras-tensorflow-gather": "backends.keras_backend:gather_on_tensorflow",
    "keras-tensorflow-onehot": "backends.keras_backend:onehot_on_tensorflow",
    "keras-jax-gather": "backends.keras_backend:gather_on_jax",
    "keras-jax-onehot": "backends.keras_backend:onehot_on_jax",
    "keras-torch-gather": "backends.keras_backend:gather_on_torch",
    "keras-torch-onehot": "backends.keras_backend:onehot_on_torch",
    "keras-tensorflow-gather-jit": "backends.keras_backend:gather_jit_on_tensorflow",
    "keras-tensorflow-onehot-jit": "backends.keras_backend:onehot_jit_on_tensorflow",
    "keras-jax-gather-jit": "backends.keras_backend:gather_jit_on_jax",
    "keras-jax-onehot-jit": "backends.keras_backend:onehot_jit_on_jax",
    "keras-torch-gather-jit": "backends.keras_backend:gather_jit_on_torch",
    "keras-torch-onehot-jit": "backends.keras_backend:onehot_jit_on_torch",
}

# Built-ins a run without a selection leaves out, with the reason: each needs far more time than
# the default (CI) run has. Named in EMBEDDING_HARNESS_ADAPTERS (an id or a glob), they run.
_KERAS_TORCH_RECOMPILES = (
    "opt-in: Keras' torch.compile of its train and predict steps guards on the model's layers and "
    "variables, so every new table shape is a new model and a new inductor compile: about 20 minutes "
    "per adapter for the ci profile on 2 cores")
OPT_IN: dict[str, str] = {
    "keras-torch-gather-jit": _KERAS_TORCH_RECOMPILES,
    "keras-torch-onehot-jit": _KERAS_TORCH_RECOMPILES,
}


def default_builtins() -> list[str]:
    """The built-ins a run without a selection runs: all but the opt-in ones."""
    return [aid for aid in BUILTIN if aid not in OPT_IN]


# Frameworks whose adapters can also run on a CUDA device when one is visible.
GPU_CAPABLE_PREFIXES = ("torch-", "tensorflow-", "jax-", "flax-", "keras-")

# The process environment a built-in adapter needs before its framework is imported:
# Keras fixes its backend at import time, so each backend gets processes of its own.
BUILTIN_ENV: dict[str, dict[str, str]] = {
    aid: {"KERAS_BACKEND": aid.split("-")[1]} for aid in BUILTIN if aid.startswith("keras-")
}


@dataclass
class Slot:
    """One requested adapter: loaded, or skipped with the reason."""

    id: str
    adapter: EmbeddingAdapter | None = None
    skip_reason: str | None = None
    # A plug-in that could not be loaded (its import or factory raised): reported as that
    # plug-in's failure, never as a collection error that would stop the other adapters.
    load_error: str | None = None


def _import_factory(spec: str):
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UnknownAdapter(
            f"adapter spec {spec!r} is neither a built-in id nor 'module:factory'; "
            f"known ids: {', '.join(BUILTIN)}"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UnknownAdapter(
                f"adapter module {module_name!r} (from {spec!r}) is not importable: "
                f"install it or add its folder to PYTHONPATH"
            ) from exc
        raise FrameworkUnavailable(
            f"{spec}: needs {exc.name!r}, which is not installed "
            f"(pip install 'embedding-harness[all]' or the package that provides it)"
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise UnknownAdapter(f"module {module_name!r} has no factory {attr!r} (from {spec!r})") from None


def _as_list(made, spec: str) -> list[EmbeddingAdapter]:
    adapters = list(made) if isinstance(made, (list, tuple)) else [made]
    for a in adapters:
        if not isinstance(a, EmbeddingAdapter):
            raise UnknownAdapter(
                f"factory {spec!r} returned {type(a).__name__}, not an EmbeddingAdapter "
                f"(subclass harness.EmbeddingAdapter)"
            )
        validate_declaration(a)
        a.source = a.source or spec
    return adapters


def visible_devices() -> list[str]:
    """``cpu`` plus ``cuda`` when any installed framework sees a CUDA GPU.

    Set EMBEDDING_HARNESS_DEVICES (e.g. ``cpu``) to restrict."""
    forced = os.environ.get("EMBEDDING_HARNESS_DEVICES")
    if forced:
        return [d.strip() for d in forced.split(",") if d.strip()]
    from harness.machine import cuda_visible

    return ["cpu", "cuda"] if cuda_visible() else ["cpu"]


def _builtin_slots(adapter_id: str, devices: list[str]) -> list[Slot]:
    slots = []
    for device in devices:
        if device != "cpu" and not adapter_id.startswith(GPU_CAPABLE_PREFIXES):
            continue
        slot_id = adapter_id if device == "cpu" else f"{adapter_id}-{device}"
        try:
            factory = _import_factory(BUILTIN[adapter_id])
            adapter = factory(device)
            validate_declaration(adapter)
            adapter.source = adapter.source or slot_id
            slots.append(Slot(slot_id, adapter))
        except FrameworkUnavailable as exc:
            slots.append(Slot(slot_id, skip_reason=str(exc)))
    return slots


def _load_error(exc: BaseException) -> str:
    """One line naming the exception, then the last frames (where the plug-in broke)."""
    head = f"{type(exc).__name__}: {exc}".strip()
    frames = "".join(traceback.format_tb(exc.__traceback__)[-2:]).rstrip()
    return f"{head}\n{frames}" if frames else head


def _spec_slots(spec: str, label: str | None = None, missing_module_is_error: bool = False) -> list[Slot]:
    """The adapters a ``module:factory`` makes. A missing framework is a skip; a module or
    factory that raises (or a factory that returns something else than adapters, or declares
    an unknown check) is that plug-in's failure. A module or factory name that does not
    exist is a configuration error for a spec the user typed, and a broken plug-in for an
    installed entry point (``missing_module_is_error``)."""
    label = label or spec
    try:
        factory = _import_factory(spec)
    except FrameworkUnavailable as exc:
        return [Slot(label, skip_reason=str(exc))]
    except UnknownAdapter as exc:
        if not missing_module_is_error:
            raise
        return [Slot(label, load_error=str(exc))]
    except Exception as exc:  # the plug-in module raised while importing
        return [Slot(label, load_error=f"importing {spec!r} failed: {_load_error(exc)}")]
    try:
        adapters = _as_list(factory(), spec)
    except FrameworkUnavailable as exc:
        return [Slot(label, skip_reason=str(exc))]
    except Exception as exc:  # the plug-in's own bug: report it, keep the others running
        detail = str(exc) if isinstance(exc, HarnessError) else _load_error(exc)
        return [Slot(label, load_error=f"factory {spec!r} failed: {detail}")]
    return [Slot(a.id or spec, a) for a in adapters]


def entry_points() -> dict[str, str]:
    """Installed plug-ins: entry-point name -> ``module:factory`` (nothing is imported)."""
    return {ep.name: ep.value for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _entry_point_slots(names: list[str] | None = None) -> list[Slot]:
    slots = []
    for name, value in entry_points().items():
        if names is None or name in names:
            slots.extend(_spec_slots(value, label=name, missing_module_is_error=True))
    return slots


def requested_specs(env: dict[str, str] | None = None) -> list[str] | None:
    raw = (env if env is not None else os.environ).get(ENV_VAR, "").strip()
    if not raw:
        return None
    return [s.strip() for s in raw.split(",") if s.strip()]


def select(specs: list[str] | None = None, devices: list[str] | None = None) -> list[Slot]:
    """The adapters to run: ``specs`` (or the env var), else every built-in and plug-in."""
    specs = specs if specs is not None else requested_specs()
    devices = devices or visible_devices()
    if specs is None:
        slots = [s for aid in default_builtins() for s in _builtin_slots(aid, devices)]
        return slots + _entry_point_slots()
    slots: list[Slot] = []
    for spec in specs:
        if ":" in spec:
            slots.extend(_spec_slots(spec))
            continue
        matches, plugins = match_spec(spec)
        for aid in matches:
            slots.extend(_builtin_slots(aid, devices))
        slots.extend(_entry_point_slots(plugins))
    ids = [s.id for s in slots]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise HarnessError(f"adapter ids must be unique, {dupes} appear twice: rename the adapters")
    return slots


def match_spec(spec: str) -> tuple[list[str], list[str]]:
    """(built-in ids, entry-point names) an id or glob names; nothing is imported.

    Raises ``UnknownAdapter`` with the fix when it names nothing."""
    plugins = entry_points()
    builtins, named = fnmatch.filter(BUILTIN, spec), fnmatch.filter(plugins, spec)
    if not builtins and not named:
        known = ", ".join([*BUILTIN, *plugins])
        raise UnknownAdapter(f"unknown adapter {spec!r} in {ENV_VAR}; use a built-in or plug-in id "
                             f"({known}), a glob over them, or 'module:factory'")
    return builtins, named


def load_adapter(spec: str, device: str = "cpu", adapter_id: str | None = None) -> EmbeddingAdapter:
    """One adapter by built-in id or ``module:factory``; ``adapter_id`` picks one from a
    factory that makes several (default: the first).

    Raises ``FrameworkUnavailable`` or ``UnknownAdapter`` with a one-line message."""
    if ":" in spec:
        adapters = _as_list(_import_factory(spec)(), spec)
        if adapter_id is None:
            return adapters[0]
        for adapter in adapters:
            if adapter.id == adapter_id:
                return adapter
        raise UnknownAdapter(f"{spec!r} makes no adapter with id {adapter_id!r}: "
                             f"it makes {[a.id for a in adapters]}")
    base = spec.removesuffix(f"-{device}") if device != "cpu" else spec
    if base not in BUILTIN:
        raise UnknownAdapter(f"unknown adapter {spec!r}; known ids: {', '.join(BUILTIN)}")
    adapter = _import_factory(BUILTIN[base])(device)
    adapter.source = adapter.source or spec
    return adapter


def describe_slot(slot: Slot) -> dict:
    """What the results record about an adapter: its own description when it loaded, else
    what its id says (framework and variant guessed from ``<framework>-...-<variant>``)."""
    if slot.adapter is not None:
        try:
            return {**slot.adapter.describe(), "skip_reason": None, "load_error": None}
        except Exception as exc:  # a plug-in whose versions() or declaration is broken
            slot.load_error = slot.load_error or f"describe() failed: {_load_error(exc)}"
    device = "cuda" if slot.id.endswith("-cuda") else "cpu"
    framework, _, variant = slot.id.removesuffix("-cuda").rpartition("-")
    return {"id": slot.id, "framework": (framework or slot.id).split("-")[0], "variant": variant or "?",
            "device": device, "source": "", "versions": {}, "declared": {},
            "skip_reason": slot.skip_reason, "load_error": slot.load_error}
