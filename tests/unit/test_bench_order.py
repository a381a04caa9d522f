"""The order cases run in (a randomised block design), the tables each adapter prepares once per
block, the settling pause between frameworks only, and the cold rows' preallocated output."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
from fakes import FakeBenchmark

from backends.numpy_backend import NumpyGather, NumpyOneHot
from harness.bench import measure
from harness.bench.suite import BenchSession, Item
from harness.bench.sweep import STREAM, Case, cases_for, get_profile, randomised_blocks, table_order

QUICK = get_profile("quick")


def _items(adapters=("x-gather", "x-onehot")) -> list[Item]:
    """Adapter after adapter, each in the profile's case order: what collection builds."""
    return [Item(f"{a}-{c.key}", a, c) for a in adapters for c in cases_for(QUICK, ("float32", "bfloat16"))]


def test_tables_keep_their_order_and_pairs_are_shuffled_inside_each():
    items = _items()
    ordered = randomised_blocks(list(items), random.Random(1))
    assert sorted(i.key for i in ordered) == sorted(i.key for i in items)
    tables = [table_order(i.case) for i in ordered]
    assert tables == sorted(tables)  # every table is one block, in the profile's order
    again = randomised_blocks(list(items), random.Random(1))
    other = randomised_blocks(list(items), random.Random(2))
    assert [i.key for i in again] == [i.key for i in ordered]  # the seed decides the order
    assert [i.key for i in other] != [i.key for i in ordered]
    # Adapters are interleaved: some block does not run one adapter's cases all first.
    blocks = {}
    for item in ordered:
        blocks.setdefault(table_order(item.case), []).append(item.adapter_id)
    assert any(ids != sorted(ids) and ids != sorted(ids, reverse=True) for ids in blocks.values())


def test_each_one_hot_series_still_meets_its_vocabularies_in_growing_order():
    ordered = randomised_blocks(_items(), random.Random(3))
    series: dict[tuple, list[int]] = {}
    for item in ordered:
        c = item.case
        series.setdefault((item.adapter_id, c.pass_, c.dtype, c.dim, c.n_ids, c.distribution), []).append(c.vocab)
    assert all(vocabs == sorted(vocabs) for vocabs in series.values())
    assert max(len(v) for v in series.values()) >= 5


def test_an_unavailable_adapter_comes_first_and_the_record_keeps_the_seed():
    gone = Item("y-unavailable", "y", None)
    ordered = randomised_blocks([*_items()[:4], gone], random.Random(0))
    assert ordered[0] is gone
    session = BenchSession(profile=get_profile("smoke"), specs=["numpy-*"], run_id="r1", part="numpy")
    collected = session.collect()
    assert [i.key for i in collected] == list(session.items)
    assert session.order_seed is not None
    assert session.record()["case_order"]["seed"] == session.order_seed
    tables = [table_order(i.case) for i in collected]
    assert tables == sorted(tables) and {i.adapter_id for i in collected} == {"numpy-gather", "numpy-onehot"}


class Counting(NumpyGather):
    """NumPy's gather that counts the tables it prepares and how its forward was called."""

    def __init__(self, adapter_id="numpy-gather"):
        super().__init__()
        self.id = adapter_id
        self.prepared, self.calls = 0, {"forward": 0, "forward_into": 0}

    def prepare_weights(self, weights):
        self.prepared += 1
        return super().prepare_weights(weights)

    def forward(self, weights, ids):
        self.calls["forward"] += 1
        return super().forward(weights, ids)

    def forward_into(self, weights, ids, out):
        self.calls["forward_into"] += 1
        return super().forward_into(weights, ids, out)


def test_each_adapter_prepares_a_table_once_while_its_block_runs():
    session = BenchSession(profile=QUICK, threads=1)
    a, b = Counting("a"), Counting("b")
    small, large = Case("forward", "float32", 64, 8, 16, "uniform"), Case("forward", "float32", 128, 8, 16, "uniform")
    for adapter, case in ((a, small), (b, small), (a, replace(small, pass_="forward_backward")), (b, small),
                          (a, large), (b, large), (a, large)):
        session.tables.weights(adapter, case)
    assert (a.prepared, b.prepared) == (2, 2)
    session.tables.release()
    session.tables.weights(a, large)
    assert a.prepared == 3


def test_only_a_change_of_framework_pauses(monkeypatch):
    pauses = []
    monkeypatch.setattr(measure.time, "sleep", pauses.append)
    session = BenchSession(profile=QUICK, threads=1)
    for label in ("numpy", "numpy", "torch", "torch", "self-check numpy-gather", "torch"):
        session.tables.switch_framework(label)
    assert pauses == [measure.SETTLE_S] * 4


def _measure(adapter, case):
    session = BenchSession(profile=get_profile("tiny"), threads=1)
    session.copy_bw, session._ready = {"gbps": 1.0}, True
    ids = session.inputs.ids(case.vocab, case.n_ids, case.distribution).astype(np.int32)
    more = [b.astype(np.int32) for b in session.inputs.id_batches(case.vocab, case.n_ids, case.distribution, 3)[1:]]
    return session.timer.measure(FakeBenchmark(), adapter, case, ids, more)


def test_cold_forward_rows_write_into_one_buffer_and_say_so():
    adapter = Counting()
    out = _measure(adapter, Case("forward", "float32", 4096, 16, 256, STREAM))
    assert out["output"] == "preallocated" and out["id_batches"] == 3
    assert adapter.calls["forward"] == 0 and adapter.calls["forward_into"] > 10
    for case in (Case("forward", "float32", 4096, 16, 256, "uniform"),
                 Case("forward_backward", "float32", 4096, 16, 256, STREAM)):
        adapter = Counting()
        assert _measure(adapter, case)["output"] == "per call"
        assert adapter.calls["forward_into"] == 0
    assert _measure(NumpyOneHot(), Case("forward", "float32", 64, 16, 256, STREAM))["output"] == "per call"


def test_a_buffer_filled_by_forward_into_is_the_forward():
    adapter = NumpyGather()
    weights = np.arange(40, dtype=np.float32).reshape(10, 4)
    ids = np.array([[9, 0, 3], [3, 3, 1]], dtype=np.int32)
    buffer = adapter.output_buffer(weights, ids)
    assert buffer.shape == (2, 3, 4) and buffer.dtype == np.float32
    assert adapter.forward_into(weights, ids, buffer) is buffer
    assert np.array_equal(buffer, weights[ids])
    assert NumpyOneHot().output_buffer(weights, ids) is None
