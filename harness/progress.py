"""Progress for long runs: a live line with an ETA on a terminal; in CI logs and pipes, a
line every ``heartbeat_s`` seconds (when set) and the lines a caller notes, then a summary."""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO


def interactive(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("CI")


class Progress:
    """Counts done/total work items grouped by a current label (an adapter id, say).

    On a terminal it redraws one line: ``[label] 12/40 (30%) eta 1m05s``. Elsewhere (CI,
    pipes) it prints that line every ``heartbeat_s`` seconds if set (else nothing) until
    ``close``, which always prints a one-line summary. Until something is done the ETA reads
    ``eta ?``: there is no rate to extrapolate from yet."""

    def __init__(self, total: int, title: str, stream: TextIO | None = None, enabled: bool | None = None,
                 heartbeat_s: float | None = None):
        self.total = max(total, 0)
        self.heartbeat_s = heartbeat_s
        self.last_beat = time.monotonic()
        self.title = title
        self.stream = stream or sys.stderr
        self.enabled = interactive(self.stream) if enabled is None else enabled
        self.done = 0
        self.label = ""
        self.started = time.monotonic()
        self.counts: dict[str, int] = {}

    def eta_seconds(self) -> float | None:
        if not self.done or self.done >= self.total:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.done * (self.total - self.done)

    @staticmethod
    def _fmt(seconds: float) -> str:
        minutes, secs = divmod(int(round(seconds)), 60)
        return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"

    def line(self) -> str:
        pct = 100 * self.done / self.total if self.total else 100
        eta = self.eta_seconds()
        tail = f" eta {self._fmt(eta)}" if eta is not None else (" eta ?" if self.done < self.total else "")
        return f"{self.title} [{self.label}] {self.done}/{self.total} ({pct:.0f}%){tail}"

    def advance(self, label: str | None = None, outcome: str | None = None, n: int = 1) -> None:
        if label is not None:
            self.label = label
        self.done += n
        if outcome:
            self.counts[outcome] = self.counts.get(outcome, 0) + n
        self._draw()

    def tick(self, label: str | None = None) -> None:
        """Redraw (terminal) or beat (elsewhere) without advancing: work is still going on."""
        if label is not None:
            self.label = label
        self._draw()

    def note(self, text: str) -> None:
        """A line that stays (an adapter finished, say), above the live line on a terminal."""
        self.stream.write(("\r\x1b[2K" if self.enabled else "") + text + "\n")
        self._draw(force=True)

    def _draw(self, force: bool = False) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[2K" + self.line())
            self.stream.flush()
        elif self.heartbeat_s is not None and (force or time.monotonic() - self.last_beat >= self.heartbeat_s):
            if not force:
                self.stream.write(self.line() + "\n")
                self.stream.flush()
            self.last_beat = time.monotonic()

    def close(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(self.counts.items()))
        summary = (f"{self.title}: {self.done}/{self.total} done in "
                   f"{self._fmt(time.monotonic() - self.started)}" + (f" ({counts})" if counts else ""))
        # Start on a fresh line: other output (pytest's dots) may not have ended its own.
        self.stream.write("\r\x1b[2K" if self.enabled else "\n")
        self.stream.write(summary + "\n")
        self.stream.flush()
        return summary
