"""The event stream between a conformance process and the supervisor that started it.

A pytest process appends one JSON object per line, flushed at once, so whatever it wrote
before dying (a segfault, ``os._exit``, a kill after a timeout) is still there:

- ``collected``: the adapters of this process (their description) and the checks selected;
- ``start``: a check is about to run (the supervisor blames a death on the open one);
- ``result``: its outcome (status, detail with the repro snippet, examples, observations).

A restarted process reads the same file and skips every check that already has an outcome.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class EventLog:
    """Appends events to one file; each line is written with a single ``write`` call."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields) -> None:
        line = json.dumps({"event": event, "t": time.time(), "pid": os.getpid(), **fields}, default=str)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()


class EventReader:
    """Reads the events appended to one file since the last call; a line still being written
    (or torn by a writer that died mid-line) waits for its end, or is never returned."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.offset = 0
        self.partial = b""

    def read_new(self) -> list[dict]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        *lines, partial = (self.partial + data).split(b"\n")
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and "event" in event:
                events.append(event)
        # Moved on only once the events are in hand: a Ctrl-C in between leaves them to the next read.
        self.offset, self.partial = self.offset + len(data), partial
        return events

    def skip_to_end(self) -> None:
        """Past everything written so far (events this reader's owner wrote itself)."""
        try:
            self.offset = self.path.stat().st_size
        except FileNotFoundError:
            self.offset = 0
        self.partial = b""


def read_events(path: Path) -> list[dict]:
    """Every complete event in ``path``."""
    return EventReader(path).read_new()


def finished_checks(events: list[dict]) -> set[tuple[str, str]]:
    """(adapter id, check) pairs that have an outcome."""
    return {(e["adapter"], e["check"]) for e in events if e["event"] == "result"}
