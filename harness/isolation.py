"""Probes that may poison or kill their process run in a child process of their own.

An id out of range on a GPU can trip a device-side assert: the error surfaces as an exception,
but the CUDA context is left unusable, so every later call in that process fails (PyTorch's
own test runner stops a suite after such an assert for that reason, pytorch/pytorch#49019, and
runs the tests that trigger one in a subprocess). The bad-id probes of an
adapter on a non-CPU device (or one that sets ``isolate_probes = True``) therefore run here:
a fresh interpreter rebuilds the adapter from its ``source``, probes the ids one by one and
prints one JSON line per id; after an id that raised it stops, and the next ids get a fresh
child. A child that dies or hangs gives the observation ``crash`` with its exit status or
signal and the end of its output; the parent's own context is never touched.

The child reads its JSON request on stdin (internal).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile

from harness.adapter import EmbeddingAdapter

CHILD_TIMEOUT_S = 300.0
# A framework that sees a GPU grabs most of its memory at start: the child shares the device with
# a parent that already holds it.
GPU_SHARING_ENV = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
TAIL_CHARS = 400  # of the child's stderr: the fault handler's innermost frames
# What a child that did not report is observed as (not an Outcome: no declaration but
# "undefined" accepts it).
CRASH = "crash"
_CHILD = "import sys; from harness.isolation import child_main; sys.exit(child_main())"


class IsolationFailed(Exception):
    """The harness could not run a probe in a child process: no observation of the adapter."""


def needs_isolation(adapter: EmbeddingAdapter) -> bool:
    if adapter.isolate_probes is not None:
        return bool(adapter.isolate_probes)
    return adapter.device.split(":")[0] != "cpu"


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "an unknown signal"
        return f"was killed by {name} (signal {-returncode})"
    return f"exited with status {returncode}"


def _child_env() -> dict[str, str]:
    from harness.checks import LAST_CALL_ENV

    env = {**GPU_SHARING_ENV, **os.environ}  # what the caller set wins
    env.pop(LAST_CALL_ENV, None)  # the parent's last-call file belongs to the parent's check
    # The child imports what this process could import (a plug-in found through a path that
    # pytest or a notebook added at run time, say).
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYTHONFAULTHANDLER"] = "1"  # a crash leaves its Python stack in the output
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_child(request: dict, timeout_s: float) -> tuple[list[dict], str | None]:
    """(the per-id lines the child printed, why it ended early or None)."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out, \
            tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err:
        # Same process group as this one: a supervisor that kills a hung check kills its probes too.
        proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                stdout=out, stderr=err, env=_child_env(), text=True)
        try:
            proc.communicate(json.dumps(request), timeout=timeout_s)
            ended = None if proc.returncode == 0 else describe_exit(proc.returncode)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            ended = f"did not finish within {timeout_s:g} s and was killed"
        out.seek(0)
        err.seek(0)
        lines = [json.loads(line) for line in out.read().splitlines() if line.startswith("{")]
        tail = err.read()[-TAIL_CHARS:].strip()
        if not any(line.get("ready") for line in lines):
            raise IsolationFailed(f"the probe's child process could not rebuild adapter {request['id']!r} from "
                                  f"{request['source']!r}" + (f" ({ended})" if ended else "")
                                  + (f"; its output ends:\n{tail}" if tail else ""))
        if ended:
            ended = f"the probe's child process {ended}" + (f"; its output ends:\n{tail}" if tail else "")
    return [line for line in lines if "bad" in line], ended


def probe_isolated(adapter: EmbeddingAdapter, vocab: int, bad_ids: list[int], index_dtype: str,
                   timeout_s: float = CHILD_TIMEOUT_S) -> dict[int, tuple[set[str], str]]:
    """What each bad id does, each observed in a child process (see the module doc)."""
    if not adapter.source:
        raise IsolationFailed("cannot isolate this probe: the adapter has no `source` to rebuild it from in a "
                              "child process (set adapter.source to its 'module:factory')")
    results: dict[int, tuple[set[str], str]] = {}
    remaining = list(bad_ids)
    while remaining:
        request = {"source": adapter.source, "device": adapter.device, "id": adapter.id, "vocab": vocab,
                   "bad_ids": remaining, "index_dtype": index_dtype}
        lines, ended = _run_child(request, timeout_s)
        for line in lines:
            results[int(line["bad"])] = (set(line["outcomes"]), line["how"])
        remaining = [b for b in remaining if b not in results]
        # A child that stopped after an exception may still die on its way out (a poisoned runtime
        # aborting at exit): that is not the next id's doing, which simply gets a fresh child.
        stopped_after_raise = bool(lines) and lines[-1].get("raised")
        if remaining and (not lines or (ended and not stopped_after_raise)):
            results[remaining.pop(0)] = ({CRASH}, ended or "the probe's child process reported nothing")
    return {bad: results[bad] for bad in bad_ids}


def child_main() -> int:
    from harness.checks import probe_one, probe_tables
    from harness.registry import load_adapter

    request = json.loads(sys.stdin.read())
    adapter = load_adapter(request["source"], device=request["device"], adapter_id=request["id"])
    print(json.dumps({"ready": True}), flush=True)
    tables = probe_tables(request["vocab"])
    for bad in request["bad_ids"]:
        outcomes, how = probe_one(adapter, tables, bad, request["index_dtype"])
        # Any exception may have poisoned this process (a device-side assert): next id, new child.
        raised = "raise" in outcomes or how.startswith("raised")
        print(json.dumps({"bad": bad, "outcomes": sorted(outcomes), "how": how, "raised": raised}), flush=True)
        if raised:
            break
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # skip interpreter teardown: a poisoned runtime may abort there, after the facts
