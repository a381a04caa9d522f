"""Finding adapters: registered frameworks, installed plug-ins, and ``EMBEDDING_HARNESS_ADAPTERS``.

Three doors, one list:
1. frameworks registered in the entry-point group ``embedding_harness.frameworks`` (a
   ``harness.framework.Framework`` each: adapter ids like ``torch-gather``, their devices, process
   environment and runtime hooks). The built-ins in ``backends/`` register there through this
   project's own pyproject.toml, as a third party's package would;
2. installed packages that declare the entry-point group ``embedding_harness.adapters`` (a
   factory taking no argument, for adapters that need nothing more);
3. ``EMBEDDING_HARNESS_ADAPTERS``: comma-separated adapter ids, glob patterns over them
   (``keras-jax-*``) and ``module:factory`` names. When set it also *selects*: only what it
   names is run. Without it every registered adapter runs except the opt-in ones.

A factory returns one adapter or a list of them. An adapter whose framework is missing is
returned as a ``Slot`` with a skip reason, never dropped silently and never an error.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib
import os
import traceback
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from harness.adapter import EmbeddingAdapter
from harness.checks import validate_declaration
from harness.errors import FrameworkUnavailable, HarnessError, UnknownAdapter
from harness.framework import FRAMEWORK_GROUP, Framework, Runtime

ENV_VAR = "EMBEDDING_HARNESS_ADAPTERS"
ENTRY_POINT_GROUP = "embedding_harness.adapters"
DISTRIBUTION = "embedding-harness"


# --- registered frameworks ---------------------------------------------------------------
def framework_entry_points() -> dict[str, str]:
    """Registered frameworks: entry-point name -> ``module:attribute`` (nothing imported).

    Read from the installed packages' metadata. Run from a source checkout, this project's own
    registrations come from its pyproject.toml instead: an install (or a stale egg-info in the
    checkout) may predate the source."""
    own = _checkout_entry_points()
    found = dict(own or {})
    for ep in metadata.entry_points(group=FRAMEWORK_GROUP):
        dist = getattr(ep, "dist", None)
        if own is not None and dist is not None and _normalized(dist.name) == DISTRIBUTION:
            continue
        found.setdefault(ep.name, ep.value)
    return found


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _checkout_entry_points() -> dict[str, str] | None:
    """This project's registrations from the pyproject.toml beside ``harness/``; None when the
    harness does not run from a checkout of this project."""
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    try:
        import tomllib  # Python >= 3.11

        project = tomllib.loads(pyproject.read_text())["project"]
    except (ImportError, OSError, KeyError, ValueError):
        return None
    if project.get("name") != DISTRIBUTION:
        return None
    return dict(project.get("entry-points", {}).get(FRAMEWORK_GROUP, {}))


@dataclass(frozen=True)
class Registered:
    """Every registered framework, and the registrations that could not be loaded (name -> why)."""

    frameworks: dict[str, Framework]
    broken: dict[str, str]


@functools.cache
def registered() -> Registered:
    """The registered frameworks, loaded once per process (backend modules import no framework)."""
    frameworks: dict[str, Framework] = {}
    broken: dict[str, str] = {}
    for name, value in framework_entry_points().items():
        try:
            framework = _load_framework(value)
        except Exception as exc:  # one broken registration must not stop the others
            broken[name] = f"framework {name!r} ({value}) could not be loaded: {_load_error(exc)}"
            continue
        problems = framework.problems()
        clash = sorted({aid for other in frameworks.values() for aid in other.adapters} & set(framework.adapters))
        if clash:
            problems.append(f"adapter ids {clash} are already declared by another framework: rename them")
        if problems:
            broken[name] = f"framework {name!r} ({value}): {'; '.join(problems)}"
        else:
            frameworks[name] = framework
    return Registered(frameworks, broken)


def _load_framework(value: str) -> Framework:
    module_name, _, attr = value.partition(":")
    framework = getattr(importlib.import_module(module_name), attr)
    if not isinstance(framework, Framework):
        raise TypeError(f"{value} is a {type(framework).__name__}, not a harness.framework.Framework")
    return framework


def known_adapters() -> dict[str, Framework]:
    """Every registered adapter id -> its framework, in registration order."""
    return {aid: fw for fw in registered().frameworks.values() for aid in fw.adapters}


def opt_in() -> dict[str, str]:
    """Adapter id -> why a run without a selection leaves it out (each needs far more time)."""
    return {aid: why for fw in registered().frameworks.values() for aid, why in fw.opt_in.items()}


def default_builtins() -> list[str]:
    """The adapters a run without a selection runs: every registered one but the opt-in ones."""
    left_out = opt_in()
    return [aid for aid in known_adapters() if aid not in left_out]


def framework_of(adapter_id: str) -> Framework | None:
    """The framework that registered ``adapter_id`` (a device suffix like ``-cuda`` allowed)."""
    known = known_adapters()
    if adapter_id in known:
        return known[adapter_id]
    base, _, device = adapter_id.rpartition("-")
    framework = known.get(base)
    return framework if framework is not None and device in framework.devices else None


def process_env(adapter_id: str) -> dict[str, str]:
    """The environment ``adapter_id``'s process needs before its framework is imported."""
    framework = framework_of(adapter_id)
    return dict(framework.env) if framework else {}


def runtimes() -> list[Runtime]:
    """Every registered framework's runtime hooks, each once."""
    seen: dict[int, Runtime] = {}
    for framework in registered().frameworks.values():
        seen.setdefault(id(framework.runtime), framework.runtime)
    return list(seen.values())


def runtime_env(threads: int, base: dict[str, str]) -> dict[str, str]:
    """The variables every registered runtime sets before import to use ``threads`` threads."""
    env: dict[str, str] = {}
    for runtime in runtimes():
        env.update(runtime.process_env(threads, {**base, **env}))
    return env


def environment_names() -> list[str]:
    """The variables registered frameworks set: their process environment and their runtimes'
    thread knobs."""
    names = [name for framework in registered().frameworks.values() for name in framework.env]
    names += [name for runtime in runtimes() for name in runtime.process_env(1, {})]
    return list(dict.fromkeys(names))


def ci_matrix() -> list[dict[str, str]]:
    """One CI job per registered framework: its name and the adapters it runs (opt-in ones left out)."""
    left_out = opt_in()
    return [{"framework": name, "adapters": ",".join(a for a in fw.adapters if a not in left_out)}
            for name, fw in registered().frameworks.items()
            if any(a not in left_out for a in fw.adapters)]


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
            f"adapter spec {spec!r} is neither a registered adapter id nor 'module:factory'; "
            f"known ids: {', '.join(known_adapters())}"
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


def _make(adapter_id: str, device: str, framework: Framework) -> EmbeddingAdapter:
    """A registered adapter on ``device``, with its framework's runtime hooks."""
    adapter = framework.adapters[adapter_id](device)
    validate_declaration(adapter)
    if adapter.runtime is None:
        adapter.runtime = framework.runtime
    return adapter


def _builtin_slots(adapter_id: str, devices: list[str]) -> list[Slot]:
    framework = known_adapters()[adapter_id]
    slots = []
    for device in devices:
        if device not in framework.devices:
            continue
        slot_id = adapter_id if device == "cpu" else f"{adapter_id}-{device}"
        try:
            adapter = _make(adapter_id, device, framework)
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


def plugin_names() -> list[str]:
    """Installed adapter plug-ins, then framework registrations that could not be loaded (each
    runs as a unit that reports why)."""
    return [*entry_points(), *registered().broken]


def _entry_point_slots(names: list[str] | None = None) -> list[Slot]:
    slots = []
    for name, value in entry_points().items():
        if names is None or name in names:
            slots.extend(_spec_slots(value, label=name, missing_module_is_error=True))
    for name, why in registered().broken.items():
        if names is None or name in names:
            slots.append(Slot(name, load_error=why))
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
    plugins, known_ids = plugin_names(), list(known_adapters())
    builtins, named = fnmatch.filter(known_ids, spec), fnmatch.filter(plugins, spec)
    if not builtins and not named:
        known = ", ".join([*known_ids, *plugins])
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
    known = known_adapters()
    if base not in known:
        raise UnknownAdapter(f"unknown adapter {spec!r}; known ids: {', '.join(known)}")
    adapter = _make(base, device, known[base])
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
