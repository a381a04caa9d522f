"""How figures read in every view: times, sizes, counts, shares of a bandwidth."""

from __future__ import annotations

# Marks a share of the copy bandwidth above 100 %: the bytes charged were not all moved from
# memory (a hot row served from cache, a gradient that aliases dY), so it is no bandwidth.
BEYOND = "†"



def fmt_share(pct) -> str:
    """A share of the copy bandwidth, marked when above 100 %."""
    if pct is None:
        return ""
    return fmt_num(pct) + (f" {BEYOND}" if pct > 100 else "")


def fmt_time(seconds) -> str:
    if seconds is None:
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_num(value, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and abs(value) >= 10 ** digits:
        return f"{value:.0f}"  # 2480, not 2.48e+03
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def fmt_bytes(value) -> str:
    if value is None:
        return ""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value} B"


def format_seconds(seconds: float | None) -> str:
    """The benchmark tables' time format, with a dash for a missing value."""
    return "—" if seconds is None else fmt_time(seconds)


def format_gbps(gbps: float | None) -> str:
    return "—" if gbps is None else f"{gbps:.3g} GB/s"
