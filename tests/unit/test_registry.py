import numpy as np
import pytest

from harness.adapter import EmbeddingAdapter
from harness.errors import FrameworkUnavailable, HarnessError, UnknownAdapter
from harness.registry import BUILTIN, load_adapter, select


def test_builtin_numpy_adapters_load_and_describe_themselves():
    adapter = load_adapter("numpy-gather")
    info = adapter.describe()
    assert (info["id"], info["framework"], info["variant"]) == ("numpy-gather", "numpy", "gather")
    assert "numpy" in info["versions"]


def test_unknown_id_is_a_one_line_error_listing_the_known_ids():
    with pytest.raises(UnknownAdapter) as err:
        select(["torh-gather"], devices=["cpu"])
    message = str(err.value)
    assert "\n" not in message and "torh-gather" in message and "numpy-gather" in message


def test_globs_select_subsets():
    ids = [s.id for s in select(["numpy-*"], devices=["cpu"])]
    assert ids == ["numpy-gather", "numpy-onehot"]


def test_module_factory_returning_a_list():
    slots = select(["examples.my_embedding:make_adapter", "broken_adapters:make_sample"], devices=["cpu"])
    assert [s.id for s in slots] == ["my-embedding", "broken-loses-duplicates", "broken-clamps", "broken-casts"]
    assert all(s.adapter.source for s in slots)


def test_missing_module_and_missing_factory_are_clear():
    with pytest.raises(UnknownAdapter, match="not importable"):
        select(["no_such_pkg.mod:factory"], devices=["cpu"])
    with pytest.raises(UnknownAdapter, match="has no factory"):
        select(["examples.my_embedding:nope"], devices=["cpu"])


def test_factory_must_return_adapters(monkeypatch, tmp_path):
    """Returning something else is the plug-in's bug: its failure, not a configuration error."""
    (tmp_path / "bad_factory.py").write_text("def make():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (slot,) = select(["bad_factory:make"], devices=["cpu"])
    assert slot.adapter is None and "returned int, not an EmbeddingAdapter" in slot.load_error


def test_missing_framework_becomes_a_skipped_slot_not_a_crash(monkeypatch, tmp_path):
    (tmp_path / "needs_missing.py").write_text(
        "from harness.errors import FrameworkUnavailable\n"
        "def make():\n    raise FrameworkUnavailable('mylib is not installed: pip install mylib')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (slot,) = select(["needs_missing:make"], devices=["cpu"])
    assert slot.adapter is None and "pip install mylib" in slot.skip_reason


def test_keras_adapter_in_the_wrong_process_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    slots = {s.id: s for s in select(["keras-jax-gather"], devices=["cpu"])}
    slot = slots["keras-jax-gather"]
    if "keras" in __import__("sys").modules:
        pytest.skip("keras already imported in this process")
    assert slot.adapter is None and "KERAS_BACKEND=jax" in slot.skip_reason


def test_duplicate_ids_are_refused():
    with pytest.raises(HarnessError, match="unique"):
        select(["numpy-gather", "numpy-*"], devices=["cpu"])


def test_env_var_selects(monkeypatch):
    monkeypatch.setenv("EMBEDDING_HARNESS_ADAPTERS", " numpy-onehot ")
    assert [s.id for s in select(devices=["cpu"])] == ["numpy-onehot"]


def test_gpu_slots_only_for_gpu_capable_frameworks(monkeypatch):
    import backends.numpy_backend as nb

    slots = select(["numpy-gather"], devices=["cpu", "cuda"])
    assert [s.id for s in slots] == ["numpy-gather"]
    with pytest.raises(FrameworkUnavailable):
        nb.gather("cuda")


def test_every_builtin_points_at_a_real_factory():
    import importlib

    for spec in BUILTIN.values():
        module, _, attr = spec.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))


def test_adapter_protocol_conveniences_round_trip():
    adapter = load_adapter("examples.my_embedding:make_adapter")
    assert isinstance(adapter, EmbeddingAdapter)
    w = np.eye(3, dtype=np.float32)
    assert np.array_equal(adapter.lookup(w, np.array([2, 0])), w[[2, 0]])


def test_cuda_slots_without_a_gpu_are_skipped_with_the_reason():
    slots = {s.id: s for s in select(["torch-gather", "jax-gather"], devices=["cpu", "cuda"])}
    assert slots["torch-gather"].adapter is not None
    assert slots["torch-gather-cuda"].adapter is None
    assert "CUDA" in slots["torch-gather-cuda"].skip_reason
    assert slots["jax-gather-cuda"].adapter is None and "cuda" in slots["jax-gather-cuda"].skip_reason


def test_visible_devices_can_be_forced(monkeypatch):
    from harness.registry import visible_devices

    monkeypatch.setenv("EMBEDDING_HARNESS_DEVICES", "cpu, cuda")
    assert visible_devices() == ["cpu", "cuda"]
    monkeypatch.setenv("EMBEDDING_HARNESS_DEVICES", "")
    monkeypatch.setattr("harness.machine.gpus", lambda: [])
    assert visible_devices() == ["cpu"]


@pytest.mark.parametrize("module, adapter_id, extra", [("torch", "torch-gather", "torch"),
                                                       ("tensorflow", "tensorflow-onehot", "tensorflow"),
                                                       ("jax", "jax-gather", "jax")])
def test_builtin_adapter_without_its_framework_is_skipped_with_the_install_hint(monkeypatch, module, adapter_id, extra):
    monkeypatch.setitem(__import__("sys").modules, module, None)  # makes `import module` fail
    (slot,) = select([adapter_id], devices=["cpu"])
    assert slot.adapter is None
    assert f"embedding-harness[{extra}]" in slot.skip_reason and "\n" not in slot.skip_reason


def test_a_skipped_cuda_adapter_is_described_by_its_id():
    from harness.registry import Slot, describe_slot

    info = describe_slot(Slot("keras-jax-onehot-cuda", skip_reason="no GPU"))
    assert (info["framework"], info["variant"], info["device"]) == ("keras", "onehot", "cuda")
    assert info["skip_reason"] == "no GPU" and info["load_error"] is None
    broken = describe_slot(Slot("fault_adapters:raises", load_error="factory failed"))
    assert broken["load_error"] == "factory failed" and broken["device"] == "cpu"
