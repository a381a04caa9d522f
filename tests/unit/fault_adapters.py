"""Adapters that misbehave the way real plug-ins do: the run must survive each of them.

Each fault fires on a 0-d id only (the ``scalar_id`` check, and the property checks when
they draw a 0-d id), so a test selects that check with ``-k`` and sees the others go on."""

import ctypes
import os
import time
from dataclasses import replace

import numpy as np

from examples.my_embedding import MyEmbedding


class Segfaults(MyEmbedding):
    """Native code reading address 0: the process dies with SIGSEGV."""

    id = "fault-segfault"

    def forward(self, weights, ids):
        if np.ndim(ids) == 0:
            ctypes.string_at(0)
        return super().forward(weights, ids)


class ExitsQuietly(MyEmbedding):
    """A library that calls ``os._exit(0)``: no exception, no output, exit status 0."""

    id = "fault-exit0"

    def forward(self, weights, ids):
        if np.ndim(ids) == 0:
            os._exit(0)
        return super().forward(weights, ids)


class Hangs(MyEmbedding):
    """A forward that never returns (a deadlock, say)."""

    id = "fault-hang"

    def forward(self, weights, ids):
        if np.ndim(ids) == 0:
            time.sleep(3600)
        return super().forward(weights, ids)


class Scripted(MyEmbedding):
    """An id and a failure message with Markdown and HTML in them: reports must escape both."""

    id = "<script>alert(1)</script>|x"

    def forward(self, weights, ids):
        if np.ndim(ids) == 0:
            raise RuntimeError("bad | row <b>bold</b> ``` fence")
        return super().forward(weights, ids)


# Set by a bad id, like the CUDA context a device-side assert leaves behind: this process is
# poisoned for good.
_POISONED = {"by": None}


def _outside(ids, vocab: int, negative_too: bool) -> np.ndarray:
    """The ids that fall outside the table (ids >= vocab, and negative ones if asked)."""
    flat = np.asarray(ids).reshape(-1)
    return flat[(flat >= vocab) | ((flat < 0) & negative_too)]


class DeviceAssert(MyEmbedding):
    """A bad id raises as a CUDA device-side assert does, and every later call in the same
    process raises too (the context is unusable). Its probes run isolated, as on a GPU."""

    id = "fault-device-assert"
    declared = replace(MyEmbedding.declared, negative_index="raise")
    isolate_probes = True
    source = "fault_adapters:device_assert"

    def forward(self, weights, ids):
        if _POISONED["by"] is not None:
            raise RuntimeError(f"CUDA error: device-side assert triggered (by id {_POISONED['by']} earlier; "
                               f"simulated)")
        bad = _outside(ids, len(weights), negative_too=True)
        if bad.size:
            _POISONED["by"] = int(bad[0])
            raise RuntimeError("CUDA error: device-side assert triggered (simulated)")
        return super().forward(weights, ids)


class DeviceAssertInProcess(DeviceAssert):
    """The same adapter with its probes in the checking process: what isolation prevents."""

    id = "fault-device-assert-inline"
    isolate_probes = False


class AbortsOnBadIds(MyEmbedding):
    """A library that aborts the process on an id past the table (a C++ CHECK failure, say);
    negative ids wrap, as declared."""

    id = "fault-abort-on-bad-id"
    isolate_probes = True
    source = "fault_adapters:abort_on_bad_id"

    def forward(self, weights, ids):
        if _outside(ids, len(weights), negative_too=False).size:
            os.abort()
        return super().forward(weights, ids)


def device_assert():
    return DeviceAssert()


def abort_on_bad_id():
    return AbortsOnBadIds()


def segfault():
    return Segfaults()


def exit0():
    return ExitsQuietly()


def hang():
    return Hangs()


def scripted():
    return Scripted()


def raises():
    raise RuntimeError("this plug-in's factory is broken")


def segfault_on_load():
    """Kills its process while the adapters are loaded, before any check is collected."""
    import ctypes

    ctypes.string_at(0)


class FailsOnLargeTables(MyEmbedding):
    """A kernel that raises on tables past 1000 rows (a size limit its authors never hit)."""

    id = "fault-large-tables"

    def forward(self, weights, ids):
        if np.shape(weights)[0] > 1000:
            raise RuntimeError("kernel launch failed: table too large")
        return super().forward(weights, ids)


def large_tables():
    return FailsOnLargeTables()
