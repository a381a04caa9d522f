"""Where an adapter runs, and which of its platform-keyed declarations hold there.

A ``Deviates`` rule names its conditions as data (device type, CPU vendor and flags, thread
count, package versions); this module reads the facts they are matched against and resolves
an adapter's declaration for the platform it runs on. The results record every rule with
``active`` true or false, so the cross-machine report can list the rules that matched no run
(stale).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from packaging.version import InvalidVersion, Version

from harness.adapter import Declared, Deviates, EmbeddingAdapter


@dataclass(frozen=True)
class Platform:
    device_type: str
    cpu_vendor: str
    cpu_flags: frozenset[str]
    threads: int
    versions: dict[str, str]


@lru_cache(maxsize=1)
def cpu_identity() -> tuple[str, frozenset[str]]:
    """(vendor_id, flags) of the first CPU in /proc/cpuinfo; ("", {}) where there is none."""
    vendor, flags = "", frozenset()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "vendor_id" and not vendor:
                vendor = value.strip()
            elif key == "flags" and not flags:
                flags = frozenset(value.split())
            if vendor and flags:
                break
    except OSError:
        pass
    return vendor, flags


def _threads(adapter: EmbeddingAdapter) -> int:
    """The adapter's intra-op threads where it reports them, else the cores this process may use
    (what XLA's and oneDNN's CPU thread pools size themselves to)."""
    try:
        reported = adapter.runtime_settings().get("num_threads")
    except Exception:  # a broken runtime_settings is reported elsewhere (describe)
        reported = None
    if isinstance(reported, int) and reported > 0:
        return reported
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def platform_of(adapter: EmbeddingAdapter) -> Platform:
    vendor, flags = cpu_identity()
    try:
        versions = dict(adapter.versions())
    except Exception:
        versions = {}
    return Platform(device_type=adapter.device.split(":")[0], cpu_vendor=vendor, cpu_flags=flags,
                    threads=_threads(adapter), versions=versions)


def _version_at_least(have: str | None, need: str) -> bool:
    if have is None:
        return False
    try:
        return Version(have.split("+")[0]) >= Version(need)
    except InvalidVersion:
        return False


def holds(rule: Deviates, platform: Platform) -> bool:
    return ((rule.device_type is None or rule.device_type == platform.device_type)
            and (rule.cpu_vendor is None or rule.cpu_vendor == platform.cpu_vendor)
            and all(flag in platform.cpu_flags for flag in rule.cpu_flags)
            and (rule.min_threads is None or platform.threads >= rule.min_threads)
            and all(_version_at_least(platform.versions.get(pkg), v) for pkg, v in rule.min_versions.items()))


def resolve(declared: Declared, platform: Platform) -> Declared:
    """The declaration on this platform: the unconditional deviations plus every rule that holds."""
    active = {name: rule.reason for rule in declared.platform_deviations if holds(rule, platform)
              for name in rule.check_names()}
    if not active:
        return declared
    return replace(declared, deviations={**declared.deviations, **active})


def declared_here(adapter: EmbeddingAdapter) -> Declared:
    """``adapter.declared`` resolved for the platform this process runs it on, kept on the adapter
    until its declaration or device changes."""
    key = (adapter.declared, adapter.device)
    cached = getattr(adapter, "_declared_here", None)
    if cached is None or cached[0] is not key[0] or cached[1] != key[1]:
        cached = (*key, resolve(adapter.declared, platform_of(adapter)))
        adapter._declared_here = cached
    return cached[2]


def platform_rules(adapter: EmbeddingAdapter) -> list[dict]:
    """Every platform rule of an adapter with whether it holds here (for the results)."""
    platform = platform_of(adapter)
    return [{"checks": list(rule.check_names()), "reason": rule.reason, "when": rule.conditions(),
             "active": holds(rule, platform)} for rule in adapter.declared.platform_deviations]


def rule_coverage(conformance_docs: dict[str, dict]) -> list[dict]:
    """Every platform rule of the recorded adapters (machine id -> conformance document), with
    the runs (machine, adapter id) where it held; one that held on none is ``stale``.

    A rule is one declaration of one framework and variant, whatever device or id its adapters
    carry (``torch-gather`` and ``torch-gather-cuda`` share their rules)."""
    rules: dict[tuple, dict] = {}
    for machine, doc in conformance_docs.items():
        for adapter in doc.get("adapters", []):
            declared = adapter.get("declared") or {}
            for rule in declared.get("platform_deviations") or []:
                key = (adapter.get("framework"), adapter.get("variant"), tuple(rule["checks"]),
                       repr(sorted(rule.get("when", {}).items())), rule["reason"])
                entry = rules.setdefault(key, {"adapters": [], "checks": rule["checks"], "when": rule.get("when", {}),
                                               "reason": rule["reason"], "held_on": [], "ran_on": []})
                if adapter["id"] not in entry["adapters"]:
                    entry["adapters"].append(adapter["id"])
                entry["ran_on"].append(f"{machine}: {adapter['id']}")
                if rule.get("active"):
                    entry["held_on"].append(f"{machine}: {adapter['id']}")
    out = list(rules.values())
    for entry in out:
        entry["adapter"] = ", ".join(entry["adapters"])
        entry["stale"] = not entry["held_on"]
    return out


STALE_INTRO = ("Deviations declared for some platforms only that held on none of the runs recorded: "
               "either no such platform was measured yet, or the condition is wrong.")


def describe_conditions(when: dict) -> str:
    """A rule's conditions as one phrase ("everywhere" when it has none)."""
    parts = []
    for key, value in when.items():
        if key == "min_versions":
            parts += [f"{pkg} >= {v}" for pkg, v in value.items()]
        elif key == "cpu_flags":
            parts.append("CPU flags " + "+".join(value))
        elif key == "min_threads":
            parts.append(f">= {value} threads")
        else:
            parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts) or "everywhere"
