"""Progress: a live line with an ETA on a terminal, one summary line in CI logs and pipes."""

from __future__ import annotations

import io

import pytest

from harness import progress
from harness.progress import Progress, interactive


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


class Clock:
    """A stand-in for time.monotonic that the test moves by hand."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(progress.time, "monotonic", fake)
    return fake


@pytest.mark.parametrize(("tty", "ci", "expected"), [
    (True, None, True), (True, "true", False), (False, None, False), (False, "true", False)])
def test_interactive_only_on_a_terminal_outside_ci(monkeypatch, tty, ci, expected):
    monkeypatch.delenv("CI", raising=False)
    if ci:
        monkeypatch.setenv("CI", ci)
    assert interactive(Stream(tty)) is expected
    assert Progress(3, "t", stream=Stream(tty)).enabled is expected


def test_ci_mode_prints_nothing_until_one_summary_line(monkeypatch, clock):
    monkeypatch.setenv("CI", "true")
    stream = Stream(tty=True)  # even a terminal: CI logs must not fill with redraws
    p = Progress(4, "conformance", stream=stream)
    for outcome in ("passed", "passed", "failed", "passed"):
        clock.now += 1.5
        p.advance("torch-gather", outcome)
    assert stream.getvalue() == ""
    summary = p.close()
    # One line (close may first end a line that other output left open).
    assert [line for line in stream.getvalue().splitlines() if line] == [summary]
    assert stream.getvalue().endswith(summary + "\n")
    assert summary == "conformance: 4/4 done in 6s (1 failed, 3 passed)"
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_terminal_mode_redraws_one_line_with_eta(monkeypatch, clock):
    monkeypatch.delenv("CI", raising=False)
    stream = Stream(tty=True)
    p = Progress(10, "bench", stream=stream)
    clock.now += 4
    p.advance("numpy-gather", n=2)
    out = stream.getvalue()
    # 4 s for 2 items: 8 left take 16 s.
    assert out == "\r\x1b[2Kbench [numpy-gather] 2/10 (20%) eta 16s"
    clock.now += 60
    p.advance("torch-gather")  # 64 s for 3: 7 left take ~149 s
    assert stream.getvalue().endswith("\r\x1b[2Kbench [torch-gather] 3/10 (30%) eta 2m29s")
    p.close()
    assert stream.getvalue().endswith("\r\x1b[2Kbench: 3/10 done in 1m04s\n")


def test_eta_is_unknown_before_the_first_item_and_after_the_last(clock):
    p = Progress(2, "x", stream=Stream(False))
    assert p.eta_seconds() is None and p.line().endswith("eta ?")  # no rate to extrapolate yet
    clock.now += 3
    p.advance("a")
    assert p.eta_seconds() == pytest.approx(3.0)
    p.advance("a")
    assert p.eta_seconds() is None and p.line() == "x [a] 2/2 (100%)"


def test_zero_total_does_not_divide_by_zero(clock):
    p = Progress(0, "empty", stream=Stream(False))
    assert p.line() == "empty [] 0/0 (100%)"
    assert p.close() == "empty: 0/0 done in 0s"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.4, "59s"), (60, "1m00s"), (3725, "62m05s")])
def test_duration_format(seconds, text):
    assert Progress._fmt(seconds) == text


def test_explicit_enabled_overrides_detection(monkeypatch, clock):
    monkeypatch.setenv("CI", "true")
    stream = Stream(tty=False)
    p = Progress(2, "forced", stream=stream, enabled=True)
    p.advance("a")
    assert stream.getvalue().startswith("\r\x1b[2Kforced [a] 1/2 (50%)")


def test_heartbeat_prints_exactly_when_its_interval_is_reached(monkeypatch, clock):
    monkeypatch.setenv("CI", "true")
    stream = Stream(tty=False)
    p = Progress(4, "bench", stream=stream, heartbeat_s=10.0)
    clock.now += 9.5
    p.advance("numpy-gather")  # 9.5 s since the start: not yet
    assert stream.getvalue() == ""
    clock.now += 0.5
    p.tick()  # 10 s: exactly the interval
    assert stream.getvalue() == "bench [numpy-gather] 1/4 (25%) eta 30s\n"
    clock.now += 9.75
    p.advance("torch-gather")  # 9.75 s since that beat
    assert stream.getvalue().count("\n") == 1
    p.note("numpy-gather done")  # a note restarts the interval and is no beat of its own
    clock.now += 9.75
    p.tick()
    assert stream.getvalue() == "bench [numpy-gather] 1/4 (25%) eta 30s\nnumpy-gather done\n"
    clock.now += 0.25
    p.tick()
    assert stream.getvalue().endswith("numpy-gather done\nbench [torch-gather] 2/4 (50%) eta 30s\n")


def test_no_heartbeat_unless_asked(monkeypatch, clock):
    monkeypatch.setenv("CI", "true")
    stream = Stream(tty=False)
    p = Progress(2, "x", stream=stream)
    clock.now += 3600
    p.tick("a")
    assert stream.getvalue() == ""


@pytest.mark.parametrize(("seconds", "text"), [(58.5, "58s"), (59.5, "1m00s"), (89.5, "1m30s")])
def test_duration_rounds_half_to_even(seconds, text):
    assert Progress._fmt(seconds) == text
