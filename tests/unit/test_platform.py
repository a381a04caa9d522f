"""Platform-keyed declarations: conditions as data, resolved where the adapter runs, verified
by the checks like any declaration, and reported stale when they held on no recorded run."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from broken_adapters import Faithful

from harness import conformance
from harness.adapter import Declared, Deviates
from harness.checks import run_check, validate_declaration
from harness.errors import HarnessError
from harness.platform import Platform, declared_here, holds, platform_of, resolve, rule_coverage
from harness.registry import Slot, describe_slot, load_adapter
from harness.report import build_report
from harness.views import conformance as conformance_view

SATURATION = ("low_precision_accumulation",)
HERE = Platform(device_type="cpu", cpu_vendor="GenuineIntel", cpu_flags=frozenset({"avx2", "avx512_bf16"}),
                threads=16, versions={"jax": "0.11.2", "jaxlib": "0.11.2+cuda"})


class SaturatesInWeightDtype(Faithful):
    """Accumulates duplicate-id gradients in the weight dtype (as torch does on CPU)."""

    id = "saturates"

    def gradient(self, weights, ids, upstream):
        grad = np.zeros_like(weights)
        np.add.at(grad, ids.reshape(-1), np.asarray(upstream, weights.dtype).reshape(-1, weights.shape[1]))
        return grad


def _with_rules(adapter, *rules):
    adapter.declared = replace(adapter.declared, platform_deviations=rules)
    return adapter


@pytest.mark.parametrize("rule, expected", [
    (Deviates(SATURATION, "r"), True),  # no condition: everywhere
    (Deviates(SATURATION, "r", device_type="cpu"), True),
    (Deviates(SATURATION, "r", device_type="cuda"), False),
    (Deviates(SATURATION, "r", cpu_vendor="GenuineIntel"), True),
    (Deviates(SATURATION, "r", cpu_vendor="AuthenticAMD"), False),
    (Deviates(SATURATION, "r", cpu_flags=("avx512_bf16",)), True),
    (Deviates(SATURATION, "r", cpu_flags=("avx512_bf16", "amx_bf16")), False),  # every flag must be there
    (Deviates(SATURATION, "r", min_threads=16), True),
    (Deviates(SATURATION, "r", min_threads=17), False),
    (Deviates(SATURATION, "r", min_versions={"jaxlib": "0.11"}), True),  # local version labels ignored
    (Deviates(SATURATION, "r", min_versions={"jaxlib": "0.11.3"}), False),
    (Deviates(SATURATION, "r", min_versions={"torch": "2.0"}), False),  # package absent: does not hold
    (Deviates(SATURATION, "r", device_type="cpu", min_threads=32), False),  # all conditions must hold
])
def test_each_condition_decides(rule, expected):
    assert holds(rule, HERE) is expected


def test_dtypes_expand_a_check_family_and_resolve_adds_only_what_holds():
    on_cpu = Deviates(SATURATION, "saturates on CPU", device_type="cpu", dtypes=("float16", "bfloat16"))
    on_gpu = Deviates(("negative_zero_preserved",), "keeps -0.0 on GPU", device_type="cuda")
    assert on_cpu.check_names() == ("low_precision_accumulation[float16]", "low_precision_accumulation[bfloat16]")
    declared = Declared(deviations={"nan_inf_isolated": "always"}, platform_deviations=(on_cpu, on_gpu))
    here = resolve(declared, HERE)
    assert set(here.deviations) == {"nan_inf_isolated", *on_cpu.check_names()}
    assert resolve(declared, replace(HERE, device_type="cuda")).deviations.keys() == {
        "nan_inf_isolated", "negative_zero_preserved"}


def test_an_active_rule_turns_the_observed_deviation_into_xfail():
    adapter = _with_rules(SaturatesInWeightDtype(), Deviates(SATURATION, "weight dtype", dtypes=("float16",),
                                                             device_type="cpu"))
    result = run_check(adapter, "low_precision_accumulation[float16]")
    assert result.status == "xfailed" and "weight dtype" in result.detail


def test_a_rule_for_another_platform_does_not_excuse_the_deviation_here():
    adapter = _with_rules(SaturatesInWeightDtype(), Deviates(SATURATION, "weight dtype", dtypes=("float16",),
                                                             device_type="cuda"))
    assert run_check(adapter, "low_precision_accumulation[float16]").status == "failed"


def test_an_active_rule_whose_deviation_does_not_occur_is_a_failure():
    adapter = _with_rules(Faithful(), Deviates(SATURATION, "claims to saturate here", dtypes=("float16",)))
    result = run_check(adapter, "low_precision_accumulation[float16]")
    assert result.status == "failed" and "declared deviation did not occur" in result.detail


def test_a_rule_naming_an_unknown_check_is_refused_with_the_fix():
    adapter = _with_rules(Faithful(), Deviates(("low_precision_accumulation",), "typo", dtypes=("float17",)))
    with pytest.raises(HarnessError, match=r"platform_deviations names unknown check.*python -m harness checks"):
        validate_declaration(adapter)


def test_the_resolution_follows_a_changed_declaration():
    adapter = Faithful()
    assert "low_precision_accumulation[float16]" not in declared_here(adapter).deviations
    _with_rules(adapter, Deviates(SATURATION, "now declared", dtypes=("float16",)))
    assert "low_precision_accumulation[float16]" in declared_here(adapter).deviations


@pytest.fixture
def machine_facts(monkeypatch):
    """This machine, faked: an AMD CPU with avx2, and cores 0, 3 and 7 in our affinity mask."""
    import harness.platform as platform_mod

    monkeypatch.setattr(platform_mod, "cpu_identity", lambda: ("AuthenticAMD", frozenset({"avx2"})))
    monkeypatch.setattr(platform_mod.os, "sched_getaffinity", lambda pid: {0, 3, 7})


def test_the_platform_is_read_from_the_adapter_and_this_machine(machine_facts):
    adapter = Faithful()
    assert platform_of(adapter) == Platform(device_type="cpu", cpu_vendor="AuthenticAMD",
                                            cpu_flags=frozenset({"avx2"}), threads=3,
                                            versions={"numpy": np.__version__})
    adapter.device = "cuda:1"
    assert platform_of(adapter).device_type == "cuda"
    adapter.versions = lambda: 1 / 0  # a broken versions(): no versions, not a crash
    assert platform_of(adapter).versions == {}


@pytest.mark.parametrize(("reported", "threads"), [
    (7, 7),  # the adapter's own intra-op threads
    (1, 1),  # the smallest count it may report
    (0, 3),  # not a count: the affinity mask (3 cores)
    (-2, 3),
    ("4", 3),
    (None, 3),
])
def test_threads_are_the_adapters_own_count_else_the_affinity_mask(machine_facts, reported, threads):
    adapter = Faithful()
    adapter.runtime_settings = lambda: {"num_threads": reported}
    assert platform_of(adapter).threads == threads


def test_threads_when_runtime_settings_break(machine_facts):
    adapter = Faithful()
    adapter.runtime_settings = lambda: 1 / 0
    assert platform_of(adapter).threads == 3


def _doc(machine: str, adapters: list) -> dict:
    entries = []
    for adapter in adapters:
        info = describe_slot(Slot(adapter.id, adapter))
        entries.append(conformance.adapter_entry(info, {}))
    return {"schema": "embedding-harness/conformance/1", "machine": {"machine_id": machine},
            "created": "2026-11-26T00:00:00+00:00", "hypothesis_profile": "ci", "adapters": entries}


def _rules_adapter(device="cpu"):
    adapter = _with_rules(Faithful(), Deviates(SATURATION, "on CPU", dtypes=("float16",), device_type="cpu"),
                          Deviates(SATURATION, "on CUDA", dtypes=("bfloat16",), device_type="cuda"),
                          Deviates(("nan_inf_isolated",), "on a 512-thread machine", min_threads=512))
    adapter.device = device
    adapter.id = "faithful" if device == "cpu" else f"faithful-{device}"
    return adapter


def test_results_record_each_rule_with_whether_it_holds_there():
    rules = describe_slot(Slot("faithful", _rules_adapter()))["declared"]["platform_deviations"]
    assert [(r["checks"], r["active"]) for r in rules] == [
        (["low_precision_accumulation[float16]"], True), (["low_precision_accumulation[bfloat16]"], False),
        (["nan_inf_isolated"], False)]
    assert rules[0]["when"] == {"device_type": "cpu"} and rules[2]["when"] == {"min_threads": 512}


def test_a_rule_that_held_on_no_run_is_stale_across_machines_and_devices():
    docs = {"cpu-box": _doc("cpu-box", [_rules_adapter()]), "gpu-box": _doc("gpu-box", [_rules_adapter("cuda")])}
    coverage = {tuple(r["checks"]): r for r in rule_coverage(docs)}
    # the CPU rule held on cpu-box; the CUDA rule on gpu-box's CUDA adapter (one family): neither stale
    assert coverage[("low_precision_accumulation[float16]",)]["held_on"] == ["cpu-box: faithful"]
    assert coverage[("low_precision_accumulation[bfloat16]",)]["held_on"] == ["gpu-box: faithful-cuda"]
    assert [r["checks"] for r in rule_coverage(docs) if r["stale"]] == [["nan_inf_isolated"]]
    # a plug-in's ids need not end in the device: the framework and variant tie them together
    gpu_named_freely = _rules_adapter("cuda")
    gpu_named_freely.id = "faithful-on-the-gpu"
    renamed = {**docs, "gpu-box": _doc("gpu-box", [gpu_named_freely])}
    assert [r["checks"] for r in rule_coverage(renamed) if r["stale"]] == [["nan_inf_isolated"]]
    only_cpu = rule_coverage({"cpu-box": docs["cpu-box"]})
    assert sorted(r["checks"][0] for r in only_cpu if r["stale"]) == [
        "low_precision_accumulation[bfloat16]", "nan_inf_isolated"]


def test_the_report_and_the_machine_page_show_the_rules(tmp_path):
    for machine, device in (("cpu-box", "cpu"), ("gpu-box", "cuda")):
        folder = tmp_path / machine
        folder.mkdir()
        (folder / "conformance.json").write_text(json.dumps(_doc(machine, [_rules_adapter(device)])))
    build_report(tmp_path)
    report = (tmp_path / "REPORT.md").read_text()
    stale = report.split("### Stale platform declarations")[1].split("\n## ")[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in stale.splitlines() if "faithful" in line]
    assert rows == [["faithful, faithful-cuda", "nan_inf_isolated", "&gt;= 512 threads", "cpu-box, gpu-box"]]
    assert "Stale platform declarations" in (tmp_path / "report.html").read_text()
    page = conformance_view.conformance_md({**_doc("cpu-box", [_rules_adapter()]), "runs": []})
    rules = page.split("## Platform-keyed declarations")[1]
    assert "| device type cpu | yes |" in rules and "| device type cuda | no |" in rules


def test_builtin_declarations_name_their_platforms():
    gather = load_adapter("numpy-gather")
    rules = gather.declared.platform_deviations
    assert rules and all(holds(rule, platform_of(gather)) for rule in rules)  # NumPy saturates everywhere
    pytest.importorskip("torch", reason="torch's own declarations need torch installed")
    torch_gather, torch_sparse = load_adapter("torch-gather"), load_adapter("torch-sparse")
    cuda = replace(platform_of(torch_gather), device_type="cuda")
    # the dense CUDA backward accumulates in float32; the sparse one does not
    def saturating(adapter):
        return [r for r in adapter.declared.platform_deviations if "low_precision_accumulation" in r.checks]

    assert saturating(torch_gather) and not any(holds(r, cuda) for r in saturating(torch_gather))
    assert any(holds(r, cuda) for r in saturating(torch_sparse))
    # the option edges observed on an H100 are declared for CUDA only
    options = [r for r in torch_gather.declared.platform_deviations if r.checks[0].startswith("option_")]
    assert options and all(holds(r, cuda) and not holds(r, platform_of(torch_gather)) for r in options)
