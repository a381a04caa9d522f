"""The run manifest: finalize reads only this run's parts and names a bad file."""

import json

import pytest

from harness.bench import parts
from harness.errors import CorruptResults, HarnessError


def _write_part(out, part, run_id):
    doc = {"benchmarks": [], "embedding_harness": {"run_id": run_id, "part": part, "cases": []}}
    parts.part_file(out, part).write_text(json.dumps(doc))


def test_a_new_run_id_starts_a_new_manifest(tmp_path):
    _write_part(tmp_path, "core", "old")
    parts.record_part(tmp_path, "old", "core", "quick", "ok")
    _write_part(tmp_path, "keras-jax", "old")
    parts.record_part(tmp_path, "old", "keras-jax", "quick", "ok")
    _write_part(tmp_path, "core", "new")
    parts.record_part(tmp_path, "new", "core", "quick", "ok")
    manifest, docs, ignored = parts.load_run(tmp_path, "new")
    assert list(docs) == ["core"] and manifest["run_id"] == "new"
    assert ignored == ["bench-keras-jax.json"]  # left over from the old run: reported, not mixed in


def test_corrupt_part_of_this_run_is_named(tmp_path):
    _write_part(tmp_path, "core", "r")
    parts.record_part(tmp_path, "r", "core", "quick", "ok")
    parts.part_file(tmp_path, "core").write_text("{not json")
    with pytest.raises(CorruptResults, match="bench-core.json"):
        parts.load_run(tmp_path, "r")


def test_corrupt_stale_file_is_ignored_not_read(tmp_path):
    _write_part(tmp_path, "core", "r")
    parts.record_part(tmp_path, "r", "core", "quick", "ok")
    (tmp_path / "bench-keras-torch.json").write_text("garbage")
    _, docs, ignored = parts.load_run(tmp_path, "r")
    assert list(docs) == ["core"] and ignored == ["bench-keras-torch.json"]


def test_part_from_another_run_is_refused(tmp_path):
    _write_part(tmp_path, "core", "someone-else")
    parts.record_part(tmp_path, "r", "core", "quick", "ok")
    with pytest.raises(CorruptResults, match="someone-else"):
        parts.load_run(tmp_path, "r")


def test_run_id_mismatch_and_missing_manifest(tmp_path):
    with pytest.raises(HarnessError, match="no benchmark run recorded"):
        parts.load_run(tmp_path)
    _write_part(tmp_path, "core", "r")
    parts.record_part(tmp_path, "r", "core", "quick", "ok")
    with pytest.raises(HarnessError, match="records run 'r', not 'other'"):
        parts.load_run(tmp_path, "other")


def test_failed_parts_are_listed_but_not_read(tmp_path):
    _write_part(tmp_path, "core", "r")
    parts.record_part(tmp_path, "r", "core", "quick", "ok")
    parts.record_part(tmp_path, "r", "keras-jax", "quick", "failed", "keras import failed")
    manifest, docs, _ = parts.load_run(tmp_path, "r")
    assert list(docs) == ["core"] and manifest["parts"]["keras-jax"]["status"] == "failed"


def test_another_machines_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDDING_HARNESS_MACHINE_ID", "machine-a")
    parts.record_part(tmp_path, "r", "core", "quick", "ok")
    parts.check_machine(tmp_path)
    monkeypatch.setenv("EMBEDDING_HARNESS_MACHINE_ID", "machine-b")
    with pytest.raises(HarnessError, match="belongs to machine 'machine-a'"):
        parts.check_machine(tmp_path)


def test_part_labels_are_file_safe(tmp_path):
    with pytest.raises(HarnessError):
        parts.part_file(tmp_path, "../core")


def test_the_part_plan_is_one_process_per_registered_framework():
    from harness import registry
    from harness.bench.parts import plan

    labels = [label for label, _ in plan(None)]
    assert labels == list(registry.registered().frameworks) == [
        "numpy", "torch", "tensorflow", "jax", "keras-tensorflow", "keras-jax", "keras-torch"]
    env = dict(plan(None))
    assert env["keras-jax"] == {"EMBEDDING_HARNESS_ADAPTERS": "keras-jax-gather,keras-jax-onehot,"
                                                              "keras-jax-gather-jit,keras-jax-onehot-jit",
                                "KERAS_BACKEND": "jax"}
    # a user's selection: only what it names, plug-ins in a part of their own
    chosen = dict(plan("torch-*,keras-torch-gather,mylib:make"))
    assert chosen == {"torch": {"EMBEDDING_HARNESS_ADAPTERS": "torch-gather,torch-sparse,torch-onehot,"
                                  "torch-gather-compile,torch-onehot-compile,torch-bag,torch-bag-multihot"},
                      "plugins": {"EMBEDDING_HARNESS_ADAPTERS": "mylib:make"},
                      "keras-torch": {"EMBEDDING_HARNESS_ADAPTERS": "keras-torch-gather", "KERAS_BACKEND": "torch"}}
    # opt-in adapters: not in the default plan, in it when a selection names them
    assert "keras-torch-gather-jit" not in env["keras-torch"]["EMBEDDING_HARNESS_ADAPTERS"]
    assert dict(plan("keras-torch-*-jit")) == {"keras-torch": {
        "EMBEDDING_HARNESS_ADAPTERS": "keras-torch-gather-jit,keras-torch-onehot-jit", "KERAS_BACKEND": "torch"}}
    # a glob that spans frameworks still gives one process per framework, never a part named '*'
    assert [label for label, _ in plan("*-gather")] == labels
    assert dict(plan("*-gather"))["jax"] == {"EMBEDDING_HARNESS_ADAPTERS": "jax-gather,flax-gather"}
