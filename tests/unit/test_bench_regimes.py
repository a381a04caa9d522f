"""Launch floor, bandwidth regime and backward-cost sections, from rows the real row writer builds."""

import pytest

from harness.bench import datasheets
from harness.bench import rows as rows_mod
from harness.bench.sweep import sized_rows
from harness.views import bench as tables
from harness.views import formats, regimes

GPU = {"gbps": 3000.0, "l2_cache_bytes": 50 << 20, "name": "NVIDIA H100 80GB HBM3",
       "method": "torch copy_, CUDA events", "bytes_per_copy": 2 << 30}


def _adapter(variant="gather", gradient="dense", device="cuda"):
    return {"framework_label": "f", "framework": "f", "variant": variant, "device": device, "gradient": gradient}


def _case(adapter, pass_, vocab, dim, n, median):
    return {"adapter": adapter, "pass": pass_, "dtype": "float32", "vocab": vocab, "dim": dim, "n_ids": n,
            "distribution": "uniform", "index_dtype": "int32", "unique": min(n, vocab), "dup_rate": 0.0,
            "status": "ok", "median_s": median, "iqr_s": median / 20, "rounds": 5, "wall_median_s": median,
            "compile_s": 0.1, "peak_mem_bytes": None}


def _rows(cases, adapters):
    record = {"part": "core", "profile": "gpu", "machine": {"l2_cache_bytes": 1 << 20, "l3_cache_bytes": 32 << 20},
              "copy_bandwidth": {"gbps": 20.0}, "adapters": adapters, "cases": cases,
              "device_copy_bandwidth": GPU}
    return rows_mod.build_rows([record])


V = 1 << 20


def _sweep():
    adapters = {"fast-cuda": _adapter(), "slow-cuda": _adapter()}
    cases = []
    for n in (16384, 4194304):
        # bytes of a forward: N * (2 * D * 4 + 4); fast moves them at 2400 GB/s, slow at 600 GB/s
        nbytes = n * (2 * 128 * 4 + 4)
        cases += [_case("fast-cuda", "forward", V, 128, n, nbytes / 2400e9),
                  _case("slow-cuda", "forward", V, 128, n, nbytes / 600e9),
                  _case("fast-cuda", "forward_backward", V, 128, n, 3 * nbytes / 2400e9)]
    cases += [_case("fast-cuda", "forward", 2, 1, 1, 8e-6), _case("slow-cuda", "forward", 2, 1, 1, 30e-6)]
    return _rows(cases, adapters)


def test_datasheet_bandwidths_match_device_names():
    assert datasheets.peak_bandwidth("NVIDIA H100 80GB HBM3") == (3350.0, "H100 SXM (HBM3)")
    assert datasheets.peak_bandwidth("NVIDIA H100 PCIe")[0] == 2000.0
    assert datasheets.peak_bandwidth("NVIDIA H200")[0] == 4800.0
    assert datasheets.peak_bandwidth("NVIDIA A100-SXM4-80GB")[0] == 2039.0
    assert datasheets.peak_bandwidth("Tesla T4") is None and datasheets.peak_bandwidth(None) is None


def test_gpu_rows_carry_both_denominators():
    row = next(r for r in _sweep() if r["adapter"] == "fast-cuda" and r["n_ids"] == 4194304 and r["pass"] == "forward")
    assert row["gbps"] == pytest.approx(2400.0)
    assert row["pct_copy_bw"] == pytest.approx(80.0)  # of the 3000 GB/s measured copy
    assert row["pct_peak_bw"] == pytest.approx(100 * 2400 / 3350)  # of the H100 SXM datasheet


def test_cpu_rows_have_no_datasheet_share():
    rows = _rows([_case("c", "forward", 1024, 64, 1000, 1e-5)], {"c": _adapter(device="cpu")})
    assert rows[0]["pct_peak_bw"] is None and rows[0]["pct_copy_bw"] is not None


def test_floor_rows_get_their_own_table_and_stay_out_of_the_sized_ones():
    rows = _sweep()
    table = regimes.floor_table(rows)
    assert f"| fast-cuda | cuda | {formats.fmt_time(8e-6)} |" in table
    assert f"| slow-cuda | cuda | {formats.fmt_time(30e-6)} |" in table
    assert all(r["vocab"] != 2 for r in sized_rows(rows))
    section = tables.device_section(rows, "cuda", "GPU results")
    assert "| 128 | 4194304 |" in section  # the sized rows are listed, V D N in a row
    assert "| 2 | 1 | 1 |" not in section  # the floor rows are not


def test_bandwidth_section_names_the_closest_framework_and_its_distance():
    rows = _sweep()
    verdict = regimes.closest_to_limit(regimes.bandwidth_rows(rows))
    assert ("D=128, N=4194304: closest is **fast-cuda** at 80 % of the copy bandwidth, 71.6 % of the "
            "datasheet peak; furthest is slow-cuda at 20 %") in verdict
    section = regimes.bandwidth_section(rows, {"device_copy_bandwidth_gbps": {"core": 3000.0},
                                               "parts": {"core": {"device_copy_bandwidth": GPU}}})
    assert f"{formats.fmt_num(2400.0)} GB/s (80 % / 71.6 %)" in section
    assert "H100 SXM (HBM3) (3350 GB/s" in section
    # the method is the one the runtime that measured it recorded
    assert "(3000 GB/s; torch copy_, CUDA events of a 1 GiB buffer, read + write)" in section


def test_backward_table_divides_forward_backward_by_forward():
    table = regimes.backward_table(_sweep())
    line = next(line for line in table.splitlines() if "fast-cuda" in line and "4194304" in line)
    assert line.rstrip(" |").endswith(f"| {formats.fmt_num(3.0)}")


def test_no_gpu_rows_no_gpu_sections():
    rows = _rows([_case("c", "forward", 1024, 64, 1000, 1e-5)], {"c": _adapter(device="cpu")})
    assert regimes.bandwidth_section(rows, {}) is None and regimes.backward_table(rows) is None


def test_a_share_above_the_copy_bandwidth_is_marked_and_never_the_verdict():
    """torch's sparse gradient aliases dY: the bytes charged were not moved (measured on the H200)."""
    adapters = {"alias-cuda": _adapter(gradient="sparse"), "real-cuda": _adapter()}
    nbytes = 4194304 * (2 * 128 * 4 + 4)
    cases = [_case("alias-cuda", "forward", V, 128, n, nbytes / 6000e9) for n in (16384, 4194304)]
    cases += [_case("real-cuda", "forward", V, 128, n, nbytes / 2000e9) for n in (16384, 4194304)]
    rows = _rows(cases, adapters)
    section = regimes.bandwidth_section(rows, {})
    assert "(200 % / 179 %) †" in section and regimes.BEYOND_NOTE in section
    verdict = regimes.closest_to_limit(regimes.bandwidth_rows(rows))
    assert "closest is **real-cuda**" in verdict and "alias-cuda" not in verdict


def test_share_table_shows_every_gather_at_the_largest_batch_of_each_width():
    table = regimes.share_table(regimes.bandwidth_rows(_sweep()))
    assert table.splitlines()[0] == "| D | N ids | fast-cuda | slow-cuda |"
    assert "| 128 | 4194304 | 80 % / 71.6 % | 20 % / 17.9 % |" in table
    assert "16384" not in table  # the launch-bound batch is not where shares are read


def test_the_readme_floor_leaves_out_adapters_that_never_ran():
    rows = _sweep() + _rows([{**_case("gone-cuda", "forward", 2, 1, 1, 1e-5), "status": "skipped",
                              "reason": "not installed"}], {"gone-cuda": _adapter()})
    assert "gone-cuda" in regimes.floor_table(rows)
    assert "gone-cuda" not in regimes.floor_table(rows, measured_only=True)
