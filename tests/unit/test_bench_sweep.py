"""Profiles, case generation, one-hot limits and the shared inputs of harness.bench.sweep."""

import math

import numpy as np
import pytest

from harness.bench import sweep
from harness.bench.sweep import Case, get_profile

L3 = 32 << 20  # this project's reference machine; the profiles are sized against it


def _float32_tables(profile):
    return [c for c in sweep.cases_for(profile, ("float32",)) if not c.is_floor]


def test_full_profile_spans_tiny_to_well_beyond_the_llc():
    cases = _float32_tables(get_profile("full"))
    assert min(c.vocab for c in cases) <= 16
    assert max(c.table_bytes for c in cases) >= 4 * L3
    assert len({c.dim for c in cases}) >= 2
    for dim in {c.dim for c in cases}:  # beyond the L3 at every width, not only the narrow one
        assert max(c.table_bytes for c in cases if c.dim == dim) >= 4 * L3
    assert {c.pass_ for c in cases} == set(sweep.PASSES)
    assert {c.distribution for c in cases} == set(sweep.DISTRIBUTIONS)
    assert all(16384 <= c.n_ids <= 65536 for c in cases)


def test_quick_profile_still_reaches_beyond_the_llc_and_smoke_is_tiny():
    quick = _float32_tables(get_profile("quick"))
    assert max(c.table_bytes for c in quick) >= 4 * L3
    smoke = get_profile("smoke")
    assert not smoke.timed
    cases = sweep.cases_for(smoke, sweep.LOW_PRECISION + ("float32",))
    assert cases and all(c.table_bytes <= 64 * 1024 and c.n_ids <= 1024 for c in cases)


def test_profiles_respect_their_table_cap():
    for profile in sweep.PROFILES.values():
        assert all(c.table_bytes <= profile.max_table_bytes
                   for c in sweep.cases_for(profile, ("float32", "bfloat16", "float16")))


def test_low_precision_only_where_declared():
    full = get_profile("full")
    f32 = {c.dtype for c in sweep.cases_for(full, ("float32",))}
    assert f32 == {"float32"}
    with_bf16 = {c.dtype for c in sweep.cases_for(full, ("float32", "bfloat16"))}
    assert with_bf16 == {"float32", "bfloat16"}


def test_cases_keep_each_series_in_growing_vocabulary_and_tables_adjacent():
    cases = sweep.cases_for(get_profile("full"), ("float32",))
    series = {}
    for c in cases:
        series.setdefault((c.pass_, c.dtype, c.dim, c.distribution), []).append(c.vocab)
    assert all(v == sorted(v) for v in series.values())
    tables = [(c.vocab, c.dim, c.dtype) for c in cases]
    seen, previous = set(), None
    for t in tables:  # a table shape never comes back once another one started
        assert t == previous or t not in seen
        seen.add(t)
        previous = t


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="smoke, quick, full"):
        get_profile("huge")


def test_case_round_trip():
    case = Case("forward_backward", "bfloat16", 1024, 64, 16384, "zipf")
    assert Case.from_dict(case.as_dict()) == case
    assert case.as_dict()["pass"] == "forward_backward"
    assert case.table_bytes == 131_072  # 1024 x 64 x 2 bytes
    assert case.output_bytes == 2_097_152  # 16384 x 64 x 2 bytes
    assert case.key == "forward_backward-bfloat16-V1024-D64-N16384-zipf"


def test_index_dtype_choice():
    assert sweep.index_dtype_for(("int8", "int32", "int64")) == "int32"
    assert sweep.index_dtype_for(("int64",)) == "int64"  # torch-onehot: F.one_hot takes int64 only
    assert sweep.index_dtype_for(("int16",)) is None


def test_onehot_memory_budget():
    small = Case("forward", "float32", 512, 64, 16384, "uniform")
    big = Case("forward", "float32", 16384, 64, 16384, "uniform")
    # N x V cells of 8 bytes (int64 one-hot) + 4 (its float32 copy): 16384 x 512 x 12 = 96 MiB
    assert sweep.onehot_bytes(small) == 100_663_296
    # forward_backward keeps one more float32 copy: 16 bytes a cell, 128 MiB
    assert sweep.onehot_bytes(Case("forward_backward", "float32", 512, 64, 16384, "uniform")) == 134_217_728
    # bfloat16: 8 + 2 forward, 8 + 2 + 2 forward_backward (the width D does not matter)
    assert sweep.onehot_bytes(Case("forward", "bfloat16", 512, 1024, 16384, "uniform")) == 83_886_080
    assert sweep.onehot_bytes(Case("forward_backward", "bfloat16", 512, 8, 16384, "uniform")) == 100_663_296
    assert sweep.onehot_memory_reason(small, 2 << 30) is None
    reason = sweep.onehot_memory_reason(big, 2 << 30)  # 16384 x 16384 x 12 = 3 GiB
    assert reason == "one-hot matrix 16384x16384 needs ~3.0 GiB > budget 2.0 GiB (--onehot-mem-budget)"


def test_onehot_memory_budget_boundary():
    case = Case("forward", "float32", 512, 64, 16384, "uniform")  # needs 100663296 bytes
    assert sweep.onehot_memory_reason(case, 100_663_296) is None  # exactly the budget: fits
    assert sweep.onehot_memory_reason(case, 100_663_295) is not None  # one byte less: skipped
    assert sweep.DEFAULT_ONEHOT_BUDGET == 2 << 30


def test_onehot_flops():
    # 2 x N x V x D = 2 x 16384 x 1024 x 64 = 2**31; forward_backward twice that
    assert sweep.onehot_flops(Case("forward", "float32", 1024, 64, 16384, "uniform")) == 2_147_483_648
    assert sweep.onehot_flops(Case("forward_backward", "float32", 1024, 64, 16384, "uniform")) == 4_294_967_296


def test_onehot_time_guard_uses_gemm_bound_and_extrapolation():
    guard = sweep.OneHotTimeGuard(gemm_flops_per_s=1e11, max_call_s=0.5)
    case = Case("forward", "float32", 1024, 64, 16384, "uniform")
    seconds, how = guard.estimate("x", case)
    assert seconds == pytest.approx(0.02147483648, rel=1e-12) and "GEMM" in how  # 2**31 FLOP at 1e11 FLOP/s
    assert guard.reason("x", case) is None
    guard.record("x", Case("forward", "float32", 256, 64, 16384, "uniform"), 0.2)
    seconds, how = guard.estimate("x", case)
    assert seconds == pytest.approx(0.8) and "V=256" in how
    assert "0.8 s" in guard.reason("x", case)
    # other adapters and other series are not affected
    assert guard.reason("y", case) is None
    assert guard.reason("x", Case("forward", "float32", 1024, 64, 16384, "zipf")) is None


CASE_1024 = Case("forward", "float32", 1024, 64, 16384, "uniform")  # 2**31 FLOP


@pytest.mark.parametrize(("limit", "skipped"), [(0.5, False), (math.nextafter(0.5, 0.0), True)])
def test_onehot_time_guard_boundary_on_the_gemm_bound(limit, skipped):
    guard = sweep.OneHotTimeGuard(gemm_flops_per_s=2.0**32, max_call_s=limit)  # 2**31 / 2**32 = 0.5 s
    assert guard.estimate("x", CASE_1024) == (0.5, "FLOPs at the measured GEMM rate")
    reason = guard.reason("x", CASE_1024)
    assert (reason is not None) is skipped
    if skipped:
        assert reason.startswith("one-hot call estimated at 0.5 s (FLOPs at the measured GEMM rate) > 0.5 s")


@pytest.mark.parametrize(("limit", "skipped"), [(0.5, False), (math.nextafter(0.5, 0.0), True)])
def test_onehot_time_guard_boundary_on_the_extrapolation(limit, skipped):
    guard = sweep.OneHotTimeGuard(gemm_flops_per_s=None, max_call_s=limit)
    guard.record("x", Case("forward", "float32", 256, 64, 16384, "uniform"), 0.125)
    assert guard.estimate("x", CASE_1024) == (0.5, "extrapolated from 0.125 s at V=256")  # 0.125 x 1024 / 256
    assert (guard.reason("x", CASE_1024) is not None) is skipped


def test_onehot_time_guard_takes_the_larger_estimate_and_the_nearest_smaller_vocabulary():
    guard = sweep.OneHotTimeGuard(gemm_flops_per_s=2.0**32, max_call_s=10.0)
    assert guard.estimate("x", CASE_1024, host_gemm=False) is None  # nothing to go by
    guard.record("x", Case("forward", "float32", 1024, 64, 16384, "uniform"), 9.0)  # the same V: not a guide
    guard.record("x", Case("forward", "float32", 2048, 64, 16384, "uniform"), 9.0)  # larger V: not either
    assert guard.estimate("x", CASE_1024) == (0.5, "FLOPs at the measured GEMM rate")
    guard.record("x", Case("forward", "float32", 128, 64, 16384, "uniform"), 0.125)  # x 8 = 1.0
    guard.record("x", Case("forward", "float32", 256, 64, 16384, "uniform"), 0.0625)  # x 4 = 0.25: the nearest
    assert guard.estimate("x", CASE_1024) == (0.5, "FLOPs at the measured GEMM rate")  # 0.5 > 0.25
    assert guard.estimate("x", CASE_1024, host_gemm=False) == (0.25, "extrapolated from 0.0625 s at V=256")
    guard.record("x", Case("forward", "float32", 256, 64, 16384, "uniform"), 0.25)  # x 4 = 1.0 > 0.5
    assert guard.estimate("x", CASE_1024) == (1.0, "extrapolated from 0.25 s at V=256")


def test_zipf_ids_stay_in_range_and_repeat_more_than_uniform():
    rng = np.random.default_rng(0)
    vocab, n = 100_000, 16384
    z = sweep.zipf_ids(vocab, n, rng)
    u = sweep.uniform_ids(vocab, n, rng)
    assert z.min() >= 0 and z.max() < vocab and z.dtype == np.int64
    assert sweep.dup_rate(z) > sweep.dup_rate(u) + 0.3
    # no pile-up at the last id (what clipping a Zipf draw would do)
    assert np.mean(z == vocab - 1) < 0.01


def test_dup_rate():
    assert sweep.dup_rate(np.array([1, 1, 2, 3])) == pytest.approx(0.25)
    assert sweep.dup_rate(np.arange(10)) == 0.0


def test_inputs_are_the_same_in_every_process():
    a, b = sweep.Inputs(), sweep.Inputs()
    np.testing.assert_array_equal(a.ids(1000, 64, "zipf"), b.ids(1000, 64, "zipf"))
    np.testing.assert_array_equal(a.weights(10, 4, "float32"), b.weights(10, 4, "float32"))
    # low-precision tables are the float32 values rounded, so every dtype sees the same data
    np.testing.assert_allclose(a.weights(10, 4, "bfloat16").astype(np.float32),
                               a.weights(10, 4, "float32"), rtol=1e-2)
    assert a.ids(1000, 64, "uniform") is a.ids(1000, 64, "uniform")  # cached


def test_inputs_cache_is_bounded():
    inputs = sweep.Inputs(capacity_bytes=1000)
    inputs.weights(10, 10, "float32")  # 400 bytes
    inputs.weights(20, 10, "float32")  # 800 bytes: evicts the first
    assert len(inputs._cache) == 1


@pytest.mark.parametrize("text,expected", [("2GiB", 2 << 30), ("512MiB", 512 << 20), ("1.5g", int(1.5 * (1 << 30))),
                                           ("1000", 1000), ("3 GB", 3 * 10**9)])
def test_parse_bytes(text, expected):
    assert sweep.parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "2 parsecs", "-1GiB", "0"])
def test_parse_bytes_rejects(text):
    with pytest.raises(ValueError):
        sweep.parse_bytes(text)


def test_every_timed_profile_times_the_launch_floor_first_and_once_per_pass():
    for name in ("quick", "full", "gpu", "smoke"):
        cases = sweep.cases_for(get_profile(name), ("float32", "bfloat16"))
        floors = [c for c in cases if c.is_floor]
        assert [c.pass_ for c in floors] == list(sweep.PASSES) and cases[:2] == floors
        assert all((c.vocab, c.dim, c.n_ids) == (2, 1, 1) for c in floors)
    # an adapter without float32 gets no floor (the floor is a float32 call)
    assert not any(c.is_floor for c in sweep.cases_for(get_profile("quick"), ("float16",)))


def test_gpu_profile_sweeps_ids_and_width_into_the_bandwidth_regime():
    cases = [c for c in sweep.cases_for(get_profile("gpu"), ("float32", "bfloat16")) if not c.is_floor]
    wide = [c for c in cases if c.vocab == 1 << 20]
    assert {c.n_ids for c in wide} == {16384, 262144, 2097152, 4194304}  # launch-bound .. 4M ids
    assert {c.dim for c in wide} == {64, 128, 256, 1024}
    assert any(c.n_ids == 2097152 and c.dim == 128 for c in wide)  # 4096 x 512 tokens, a real batch
    # the largest cases move gigabytes; none exceeds the profile's output cap
    assert max(c.output_bytes for c in cases) == 4 << 30
    assert all(c.output_bytes <= get_profile("gpu").max_output_bytes for c in cases)
    assert not any(c.dim == 1024 and c.n_ids >= 2097152 for c in cases)  # 8-16 GiB outputs: capped
    # the crossover series: one N, many vocabularies
    crossover = [c for c in cases if c.n_ids == 262144 and c.dim == 128 and c.dtype == "float32"
                 and c.pass_ == "forward"]
    assert len({c.vocab for c in crossover}) >= 8
    assert {c.dtype for c in wide} == {"float32", "bfloat16"}


def test_cases_sharing_a_table_are_adjacent_so_it_is_prepared_once():
    cases = [c for c in sweep.cases_for(get_profile("gpu"), ("float32",)) if not c.is_floor]
    tables = [(c.vocab, c.dim, c.dtype) for c in cases]
    runs = [t for k, t in enumerate(tables) if k == 0 or tables[k - 1] != t]
    assert len(runs) == len(set(runs))


def test_large_inputs_repeat_a_drawn_block_and_stay_deterministic():
    inputs = sweep.Inputs()
    big = inputs.weights(sweep.MAX_DRAWN_VALUES // 8 * 3, 8, "float32")  # three blocks' worth of rows
    rows = sweep.MAX_DRAWN_VALUES // 8
    assert big.shape == (3 * rows, 8) and np.array_equal(big[:rows], big[rows:2 * rows])
    again = sweep.Inputs().weights(sweep.MAX_DRAWN_VALUES // 8 * 3, 8, "float32")
    assert np.array_equal(big, again)
    small = inputs.weights(100, 8, "float32")
    assert len(np.unique(small[:, 0])) == 100  # small tables are drawn in full


def test_the_gpu_one_hot_guard_does_not_use_the_hosts_gemm_rate():
    guard = sweep.OneHotTimeGuard(gemm_flops_per_s=1e9, max_call_s=0.5)
    case = Case("forward", "float32", 8192, 128, 262144, "uniform")
    assert guard.reason("x-onehot", case) is not None  # 0.55 TFLOP at 1 GFLOP/s: skipped on the host
    assert guard.reason("x-onehot-cuda", case, host_gemm=False) is None
    guard.record("x-onehot-cuda", Case("forward", "float32", 2048, 128, 262144, "uniform"), 0.2)
    assert "extrapolated" in guard.reason("x-onehot-cuda", case, host_gemm=False)


def test_the_gpu_profile_refuses_a_machine_without_a_gpu_in_one_line(monkeypatch):
    from harness.bench.run import runs_on_profile_devices
    from harness.errors import HarnessError

    monkeypatch.setenv("EMBEDDING_HARNESS_DEVICES", "cpu")
    with pytest.raises(HarnessError, match="profile gpu measures adapters on cuda.*use --profile quick or full"):
        runs_on_profile_devices(get_profile("gpu"), {})
    assert runs_on_profile_devices(get_profile("quick"), {})  # CPU profiles never ask


def test_a_part_with_no_gpu_capable_adapter_has_nothing_to_measure_on_the_gpu(monkeypatch):
    from harness.bench.run import runs_on_profile_devices

    monkeypatch.setenv("EMBEDDING_HARNESS_DEVICES", "cpu,cuda")
    gpu = get_profile("gpu")
    assert not runs_on_profile_devices(gpu, {"EMBEDDING_HARNESS_ADAPTERS": "numpy-gather,numpy-onehot"})
    assert runs_on_profile_devices(gpu, {"EMBEDDING_HARNESS_ADAPTERS": "torch-gather"})
    assert runs_on_profile_devices(gpu, {"EMBEDDING_HARNESS_ADAPTERS": "mylib:factory"})  # a plug-in may


def test_stream_cases_rotate_through_enough_batches_to_leave_the_cache():
    mib = 1 << 20
    case = Case("forward", "float32", 524288, 64, 16384, sweep.STREAM)  # one batch: 16384 x 64 x 4 = 4 MiB
    assert sweep.stream_batches(case, 32 * mib) == 32  # 4 x 32 MiB of rows / 4 MiB a batch
    assert sweep.stream_batches(case, None) == 32  # cache size unknown: 32 MiB assumed
    assert sweep.stream_batches(case, 32 * mib + 1) == 33  # a byte more needs one more batch (ceil)
    assert sweep.stream_batches(case, 2 * mib) == 2  # exactly 2 batches
    assert sweep.stream_batches(case, 1 * mib) == 2  # 1 would do, but a stream rotates through at least 2
    assert sweep.stream_batches(case, 256 * mib) == 256  # exactly the cap
    assert sweep.stream_batches(case, 256 * mib + 1) == 256  # 257 needed: capped
    assert sweep.stream_batches(Case("forward", "float32", 524288, 64, 16384, "uniform"), 32 * mib) == 1
    assert sweep.stream_batches(Case("forward", "float32", 2, 1, 1, sweep.STREAM), 32 * mib) == 256
    inputs = sweep.Inputs()
    batches = inputs.id_batches(1000, 64, sweep.STREAM, 3)
    assert len(batches) == 3 and not np.array_equal(batches[0], batches[1])
    assert np.array_equal(inputs.ids(1000, 64, "uniform"), sweep.Inputs().ids(1000, 64, "uniform"))
    assert any(c.distribution == sweep.STREAM for c in sweep.cases_for(get_profile("full")))
