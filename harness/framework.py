"""What a backend module tells the harness about its framework, so that ``harness/`` names none.

A backend module exports one ``Framework`` per group of adapters that share a process (Keras: one
per backend, since Keras fixes its backend at import) and registers it in the entry-point group
``embedding_harness.frameworks`` of its package's ``pyproject.toml``, as the built-ins do:

    [project.entry-points."embedding_harness.frameworks"]
    torch = "backends.torch_backend:FRAMEWORK"

The ``Runtime`` is the framework's process-wide machinery the benchmarks need (thread knobs,
device timers, memory counters, copy bandwidth); every hook has a default that does nothing, so
a framework implements only what it has. Importing a backend module must not import its
framework: the harness lists adapters and plans processes without loading any.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

FRAMEWORK_GROUP = "embedding_harness.frameworks"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class Runtime:
    """Hooks into one framework's process-wide machinery; each default does nothing."""

    name = ""

    def process_env(self, threads: int, base: Mapping[str, str]) -> dict[str, str]:
        """Environment variables to set before the framework is imported, so that it uses
        ``threads`` threads (``base``: the environment they join)."""
        return {}

    def set_threads(self, threads: int) -> dict[str, Any] | None:
        """Apply ``threads`` to an imported framework; what it now uses (None: nothing to report)."""
        return None

    def device_event(self, device: str) -> Callable[[], Any] | None:
        """A maker of timing events on ``device``'s stream (``record()``, ``synchronize()``,
        ``elapsed_time(end) -> ms``, the ``torch.cuda.Event`` interface), or None."""
        return None

    def memory_probe(self, device: str):
        """A context manager whose ``extra_bytes`` is the device memory a call allocated beyond
        what was allocated before it, or None where the framework counts none."""
        return None

    def copy_bandwidth(self, device: str, nbytes: int) -> dict[str, Any] | None:
        """``device``'s copy bandwidth (``gbps``, ``name``, ``l2_cache_bytes``, ...), or None when
        this framework cannot measure it here."""
        return None


class DeviceMemoryProbe:
    """A ``Runtime.memory_probe``: around one call, the allocator's peak minus what it held before.
    A framework says how to reset its peak and read the held bytes (``start``) and how to read
    the peak (``peak``)."""

    def __init__(self):
        self.before = self.after = None

    def start(self) -> int:
        raise NotImplementedError

    def peak(self) -> int:
        raise NotImplementedError

    def __enter__(self):
        self.before = self.start()
        return self

    def __exit__(self, *exc):
        self.after = self.peak()
        return False

    @property
    def extra_bytes(self) -> int | None:
        return None if self.before is None or self.after is None else max(0, self.after - self.before)


@dataclass(frozen=True)
class Framework:
    """A group of built-in (or third-party) adapters that run in one process.

    ``adapters``: adapter id -> factory taking the device name (``"cpu"``, ``"cuda"``).
    ``devices``: the devices its adapters can run on. ``env``: the process environment they
    need before their framework is imported. ``opt_in``: adapter id -> why a run without a
    selection leaves it out. ``runtime``: the hooks above, shared by the adapters."""

    name: str
    adapters: Mapping[str, Callable[[str], Any]]
    devices: tuple[str, ...] = ("cpu",)
    env: Mapping[str, str] = field(default_factory=dict)
    opt_in: Mapping[str, str] = field(default_factory=dict)
    runtime: Runtime = field(default_factory=Runtime)

    def problems(self) -> list[str]:
        """What is wrong with this declaration, each a sentence naming the fix."""
        found = []
        if not _NAME.match(self.name):
            found.append(f"name {self.name!r}: use lower-case letters, digits, '.', '_' and '-'")
        if not self.adapters:
            found.append("declares no adapter")
        for adapter_id, factory in self.adapters.items():
            if not _NAME.match(adapter_id):
                found.append(f"adapter id {adapter_id!r}: use lower-case letters, digits, '.', '_' and '-'")
            if not callable(factory):
                found.append(f"adapter {adapter_id!r}: its factory is not callable")
        unknown = sorted(set(self.opt_in) - set(self.adapters))
        if unknown:
            found.append(f"opt_in names adapters it does not declare: {unknown}")
        if not self.devices:
            found.append("declares no device")
        if not isinstance(self.runtime, Runtime):
            found.append("runtime is not a harness.framework.Runtime")
        return found
