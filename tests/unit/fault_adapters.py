"""Adapters that misbehave the way real plug-ins do: the run must survive each of them.

Each fault fires on a 0-d id only (the ``scalar_id`` check, and the property checks when
they draw a 0-d id), so a test selects that check with ``-k`` and sees the others go on."""

import ctypes
import os
import time

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
