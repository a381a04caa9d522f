"""Progress for long runs: a live line with an ETA on a terminal, one summary line in CI logs."""

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
    pipes) it stays silent until ``close``, which always prints a one-line summary."""

    def __init__(self, total: int, title: str, stream: TextIO | None = None, enabled: bool | None = None):
        self.total = max(total, 0)
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
        tail = f" eta {self._fmt(eta)}" if eta is not None else ""
        return f"{self.title} [{self.label}] {self.done}/{self.total} ({pct:.0f}%){tail}"

    def advance(self, label: str | None = None, outcome: str | None = None, n: int = 1) -> None:
        if label is not None:
            self.label = label
        self.done += n
        if outcome:
            self.counts[outcome] = self.counts.get(outcome, 0) + n
        if self.enabled:
            self.stream.write("\r\x1b[2K" + self.line())
            self.stream.flush()

    def close(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(self.counts.items()))
        summary = (f"{self.title}: {self.done}/{self.total} done in "
                   f"{self._fmt(time.monotonic() - self.started)}" + (f" ({counts})" if counts else ""))
        # Start on a fresh line: other output (pytest's dots) may not have ended its own.
        self.stream.write("\r\x1b[2K" if self.enabled else "\n")
        self.stream.write(summary + "\n")
        self.stream.flush()
        return summary
