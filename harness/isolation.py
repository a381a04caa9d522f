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
TAIL_CHARS = 400  # of the child's stderr: the fault handler's innermost frames
# What a child that did not report is observed as (not an Outcome: no declaration but
# "undefined" accepts it).
CRASH = "crash"
_CHILD = "import sys; from harness.isolation import child_main; sys.exit(child_main())"


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

    env = dict(os.environ)
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
        proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                stdout=out, stderr=err, env=_child_env(), text=True, start_new_session=True)
        try:
            proc.communicate(json.dumps(request), timeout=timeout_s)
            ended = None if proc.returncode == 0 else describe_exit(proc.returncode)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            ended = f"did not finish within {timeout_s:g} s and was killed"
        out.seek(0)
        err.seek(0)
        lines = [json.loads(line) for line in out.read().splitlines() if line.startswith("{")]
        if ended:
            tail = err.read()[-TAIL_CHARS:].strip()
            ended = f"the probe's child process {ended}" + (f"; its output ends:\n{tail}" if tail else "")
    return lines, ended


def probe_isolated(adapter: EmbeddingAdapter, vocab: int, bad_ids: list[int], index_dtype: str,
                   timeout_s: float = CHILD_TIMEOUT_S) -> dict[int, tuple[set[str], str]]:
    """What each bad id does, each observed in a child process (see the module doc)."""
    if not adapter.source:
        return {bad: ({CRASH}, "cannot isolate this probe: the adapter has no `source` to rebuild it from "
                               "in a child process (set adapter.source to its 'module:factory')")
                for bad in bad_ids}
    results: dict[int, tuple[set[str], str]] = {}
    remaining = list(bad_ids)
    while remaining:
        request = {"source": adapter.source, "device": adapter.device, "id": adapter.id, "vocab": vocab,
                   "bad_ids": remaining, "index_dtype": index_dtype}
        lines, ended = _run_child(request, timeout_s)
        for line in lines:
            results[int(line["bad"])] = (set(line["outcomes"]), line["how"])
        remaining = [b for b in remaining if b not in results]
        if remaining and ended:  # the child died on the first id it had not reported
            results[remaining.pop(0)] = ({CRASH}, ended)
        elif remaining and not lines:
            results[remaining.pop(0)] = ({CRASH}, "the probe's child process reported nothing")
    return {bad: results[bad] for bad in bad_ids}


def child_main() -> int:
    from harness.checks import probe_one, probe_tables
    from harness.registry import load_adapter

    request = json.loads(sys.stdin.read())
    adapter = load_adapter(request["source"], device=request["device"], adapter_id=request["id"])
    tables = probe_tables(request["vocab"])
    for bad in request["bad_ids"]:
        outcomes, how = probe_one(adapter, tables, bad, request["index_dtype"])
        print(json.dumps({"bad": bad, "outcomes": sorted(outcomes), "how": how}), flush=True)
        if "raise" in outcomes:  # the exception may have poisoned this process: next id, new child
            break
    return 0
