"""Finding adapters (harness.registry), whatever this machine has installed: frameworks, CUDA and
plug-ins are faked here, so the same assertions hold with or without torch/JAX and a GPU.
Tests that need a real framework say so and are skipped without it."""

import subprocess
import sys
import types
from importlib import metadata

import numpy as np
import pytest
from fakes import NVIDIA_SMI_H100, fake_torch

from harness import registry
from harness.adapter import EmbeddingAdapter
from harness.errors import FrameworkUnavailable, HarnessError, UnknownAdapter
from harness.registry import Slot, describe_slot, known_adapters, load_adapter, select, visible_devices

REAL_ENTRY_POINTS = registry.entry_points


@pytest.fixture(autouse=True)
def plugins(monkeypatch):
    """No installed plug-in unless a test declares some: ``plugins.update({name: 'module:factory'})``."""
    installed: dict[str, str] = {}
    monkeypatch.setattr(registry, "entry_points", lambda: dict(installed))
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    return installed


def fake_jax(gpu: bool = False) -> tuple[types.ModuleType, types.ModuleType]:
    """``jax`` and ``jax.numpy`` modules answering ``jax.devices(platform)`` as JAX does."""
    jax = types.ModuleType("jax")
    jax.__version__ = "0.0+fake"

    def devices(platform=None):
        if platform == "gpu" and not gpu:
            raise RuntimeError("Unknown backend: 'gpu' requested, but no platforms that are instances of gpu")
        return [f"{platform}:0"]

    jax.devices = devices
    jax.numpy = types.ModuleType("jax.numpy")
    return jax, jax.numpy


@pytest.fixture
def frameworks(monkeypatch):
    """Install fake torch and JAX: ``frameworks(cuda=False)``."""

    def install(cuda: bool):
        monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda_available=cuda))
        jax, jnp = fake_jax(gpu=cuda)
        monkeypatch.setitem(sys.modules, "jax", jax)
        monkeypatch.setitem(sys.modules, "jax.numpy", jnp)

    return install


class _Blocked:
    def __init__(self, names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


@pytest.fixture
def not_installed(monkeypatch):
    """``not_installed('keras')``: that package and its submodules cannot be imported in this test."""

    def block(*names):
        for mod in [m for m in sys.modules if m.split(".")[0] in names]:
            monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setattr(sys, "meta_path", [_Blocked(names), *sys.meta_path])

    return block


# ---- built-ins ---------------------------------------------------------------------------------


def test_builtin_numpy_adapters_load_and_describe_themselves():
    adapter = load_adapter("numpy-gather")
    info = adapter.describe()
    assert (info["id"], info["framework"], info["variant"], info["device"]) == ("numpy-gather", "numpy", "gather",
                                                                               "cpu")
    assert info["versions"] == {"numpy": np.__version__}


def test_unknown_id_is_a_one_line_error_listing_the_known_ids(plugins):
    plugins["acme-gather"] = "acme:make"
    with pytest.raises(UnknownAdapter) as err:
        select(["torh-gather"], devices=["cpu"])
    message = str(err.value)
    assert "\n" not in message and "'torh-gather'" in message
    assert "numpy-gather" in message and "keras-torch-onehot" in message and "acme-gather" in message


def test_globs_select_subsets():
    assert [s.id for s in select(["numpy-*"], devices=["cpu"])] == ["numpy-gather", "numpy-onehot"]
    assert [s.id for s in select(["numpy-?ather"], devices=["cpu"])] == ["numpy-gather"]


def test_module_factory_returning_a_list():
    slots = select(["examples.my_embedding:make_adapter", "broken_adapters:make_sample"], devices=["cpu"])
    assert [s.id for s in slots] == ["my-embedding", "broken-loses-duplicates", "broken-clamps", "broken-casts"]
    assert [s.adapter.source for s in slots] == ["examples.my_embedding:make_adapter"] + [
        "broken_adapters:make_sample"] * 3


def test_missing_module_and_missing_factory_are_clear():
    with pytest.raises(UnknownAdapter, match="not importable"):
        select(["no_such_pkg.mod:factory"], devices=["cpu"])
    with pytest.raises(UnknownAdapter, match="has no factory"):
        select(["examples.my_embedding:nope"], devices=["cpu"])
    with pytest.raises(UnknownAdapter, match="neither a registered adapter id nor 'module:factory'"):
        load_adapter(":factory")


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
    assert slot.adapter is None and slot.skip_reason == "mylib is not installed: pip install mylib"


def test_a_plugin_module_importing_a_missing_package_is_a_skip(monkeypatch, tmp_path, not_installed):
    (tmp_path / "uses_acmelib.py").write_text("import acmelib\ndef make():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    not_installed("acmelib")
    (slot,) = select(["uses_acmelib:make"], devices=["cpu"])
    assert slot.adapter is None and "needs 'acmelib', which is not installed" in slot.skip_reason


def test_duplicate_ids_are_refused():
    with pytest.raises(HarnessError, match=r"unique, \['numpy-gather'\] appear twice"):
        select(["numpy-gather", "numpy-*"], devices=["cpu"])


def test_env_var_selects(monkeypatch):
    monkeypatch.setenv("EMBEDDING_HARNESS_ADAPTERS", " numpy-onehot ,, ")
    assert [s.id for s in select(devices=["cpu"])] == ["numpy-onehot"]
    assert registry.requested_specs({"EMBEDDING_HARNESS_ADAPTERS": "a, b:c ,"}) == ["a", "b:c"]
    assert registry.requested_specs({"EMBEDDING_HARNESS_ADAPTERS": "  "}) is None


def test_gpu_slots_only_for_gpu_capable_frameworks():
    import backends.numpy_backend as nb

    slots = select(["numpy-gather"], devices=["cpu", "cuda"])
    assert [s.id for s in slots] == ["numpy-gather"]
    with pytest.raises(FrameworkUnavailable):
        nb.gather("cuda")


def test_every_builtin_framework_registers_from_pyproject_without_importing_its_framework():
    from pathlib import Path

    import tomllib

    declared = tomllib.loads((Path(registry.__file__).parents[1] / "pyproject.toml").read_text())
    assert registry.framework_entry_points() == declared["project"]["entry-points"]["embedding_harness.frameworks"]
    registered = registry.registered()
    assert not registered.broken and list(registered.frameworks) == [
        "numpy", "torch", "tensorflow", "jax", "keras-tensorflow", "keras-jax", "keras-torch"]
    # Listing every adapter imports the backend modules, never a framework.
    code = ("import sys; from harness import registry; assert len(registry.known_adapters()) > 30; "
            "print(sorted({'torch', 'tensorflow', 'jax', 'keras', 'flax'} & set(sys.modules)))")
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(registry.__file__).parents[1])
    assert listed.stdout.strip() == "[]"
    assert "torch-gather" in known_adapters() and known_adapters()["flax-gather"].name == "jax"
    assert registry.process_env("keras-jax-gather-cuda") == {"KERAS_BACKEND": "jax"}
    assert registry.process_env("numpy-gather") == {} and registry.framework_of("numpy-gather-cuda") is None


def test_adapter_protocol_conveniences_round_trip():
    adapter = load_adapter("examples.my_embedding:make_adapter")
    assert isinstance(adapter, EmbeddingAdapter)
    w = np.eye(3, dtype=np.float32)
    assert np.array_equal(adapter.lookup(w, np.array([2, 0])), w[[2, 0]])
    with pytest.raises(UnknownAdapter, match="makes no adapter with id 'other'"):
        load_adapter("examples.my_embedding:make_adapter", adapter_id="other")


# ---- frameworks that are missing or see no GPU (faked, so it holds on every machine) ------------


def test_cuda_slots_without_a_gpu_are_skipped_with_the_reason(frameworks):
    frameworks(cuda=False)
    slots = {s.id: s for s in select(["torch-gather", "jax-gather"], devices=["cpu", "cuda"])}
    assert list(slots) == ["torch-gather", "torch-gather-cuda", "jax-gather", "jax-gather-cuda"]
    assert slots["torch-gather"].adapter is not None and slots["torch-gather"].adapter.device == "cpu"
    assert slots["jax-gather"].adapter is not None
    assert slots["torch-gather-cuda"].adapter is None
    assert slots["torch-gather-cuda"].skip_reason == "torch sees no CUDA device (CPU-only build or no GPU)"
    assert slots["jax-gather-cuda"].adapter is None
    assert slots["jax-gather-cuda"].skip_reason == "jax sees no cuda device (install jax[cuda12] for GPUs)"


def test_cuda_slots_load_when_the_framework_sees_a_gpu(frameworks):
    frameworks(cuda=True)
    slots = {s.id: s for s in select(["torch-gather", "jax-gather"], devices=["cpu", "cuda"])}
    for slot_id in ("torch-gather-cuda", "jax-gather-cuda"):
        assert slots[slot_id].adapter is not None and slots[slot_id].skip_reason is None
        assert (slots[slot_id].adapter.id, slots[slot_id].adapter.device) == (slot_id, "cuda")
    assert load_adapter("torch-gather-cuda", device="cuda").gather_twin == "torch-gather-cuda"


def test_real_torch_without_cuda_is_skipped_the_same_way(monkeypatch):
    torch = pytest.importorskip("torch", reason="checks the fake against the real torch API")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # whatever GPU this machine has
    (cpu, cuda) = select(["torch-gather"], devices=["cpu", "cuda"])
    assert cpu.adapter is not None and cpu.adapter.versions()["torch"] == torch.__version__
    assert cuda.adapter is None and cuda.skip_reason == "torch sees no CUDA device (CPU-only build or no GPU)"


def test_keras_adapter_in_the_wrong_process_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.delitem(sys.modules, "keras", raising=False)  # Keras not imported yet: the variable decides
    (slot,) = select(["keras-jax-gather"], devices=["cpu"])
    assert slot.adapter is None
    assert slot.skip_reason.startswith("needs KERAS_BACKEND=jax, this process runs Keras on tensorflow")


def test_keras_already_imported_decides_over_the_variable(monkeypatch):
    keras = types.ModuleType("keras")
    keras.backend = types.SimpleNamespace(backend=lambda: "jax")
    monkeypatch.setitem(sys.modules, "keras", keras)
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    (slot,) = select(["keras-torch-onehot"], devices=["cpu"])
    assert slot.skip_reason.startswith("needs KERAS_BACKEND=torch, this process runs Keras on jax")


@pytest.mark.parametrize("module, adapter_id, extra", [("torch", "torch-gather", "torch"),
                                                       ("tensorflow", "tensorflow-onehot", "tensorflow"),
                                                       ("jax", "jax-gather", "jax"),
                                                       ("keras", "keras-torch-gather", "keras")])
def test_builtin_adapter_without_its_framework_is_skipped_with_the_install_hint(
        monkeypatch, not_installed, module, adapter_id, extra):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    not_installed(module)
    (slot,) = select([adapter_id], devices=["cpu"])
    assert slot.adapter is None
    assert f"embedding-harness[{extra}]" in slot.skip_reason and "\n" not in slot.skip_reason


# ---- which devices ---------------------------------------------------------------------------


def test_visible_devices_can_be_forced(monkeypatch, nvidia_smi):
    nvidia_smi([NVIDIA_SMI_H100])  # a GPU is there, but the variable restricts
    monkeypatch.setenv("EMBEDDING_HARNESS_DEVICES", "cpu")
    assert visible_devices() == ["cpu"]
    monkeypatch.setenv("EMBEDDING_HARNESS_DEVICES", " cpu, ,cuda ")
    assert visible_devices() == ["cpu", "cuda"]


@pytest.mark.parametrize(("smi", "cuda_visible_devices", "expected"), [
    ([NVIDIA_SMI_H100], None, ["cpu", "cuda"]),
    ([NVIDIA_SMI_H100], "0", ["cpu", "cuda"]),
    ([NVIDIA_SMI_H100], "", ["cpu"]),  # CUDA_VISIBLE_DEVICES= hides every GPU
    ([NVIDIA_SMI_H100], "-1", ["cpu"]),
    (None, None, ["cpu"]),  # no nvidia-smi
    ([], None, ["cpu"]),  # nvidia-smi lists no GPU
])
def test_visible_devices_follow_nvidia_smi_and_cuda_visible_devices(monkeypatch, nvidia_smi, smi,
                                                                      cuda_visible_devices, expected):
    monkeypatch.delenv("EMBEDDING_HARNESS_DEVICES", raising=False)
    nvidia_smi(smi, cuda_visible_devices=cuda_visible_devices)
    assert visible_devices() == expected


def test_select_without_devices_uses_the_visible_ones(monkeypatch, frameworks):
    frameworks(cuda=False)
    monkeypatch.setattr(registry, "visible_devices", lambda: ["cpu", "cuda"])
    assert [s.id for s in select(["torch-gather"])] == ["torch-gather", "torch-gather-cuda"]
    monkeypatch.setattr(registry, "visible_devices", lambda: ["cpu"])
    assert [s.id for s in select(["torch-gather"])] == ["torch-gather"]


# ---- installed plug-ins (entry points, faked) ----------------------------------------------------


def test_entry_points_are_read_from_the_harness_group(monkeypatch):
    seen = []

    def fake_entry_points(group):
        seen.append(group)
        return [metadata.EntryPoint(name="acme-gather", value="acme_pkg.adapters:make", group=group)]

    monkeypatch.setattr(registry.metadata, "entry_points", fake_entry_points)
    assert REAL_ENTRY_POINTS() == {"acme-gather": "acme_pkg.adapters:make"}
    assert seen == ["embedding_harness.adapters"]


PLUGIN = '''
from examples.my_embedding import MyEmbedding
from harness.errors import FrameworkUnavailable


class Acme(MyEmbedding):
    framework = "acme"

    def __init__(self, id, variant):
        self.id, self.variant = id, variant


def make():
    return [Acme("acme-gather", "gather"), Acme("acme-onehot", "onehot")]


def make_cuda():
    raise FrameworkUnavailable("acme sees no CUDA device")
'''


@pytest.fixture
def acme(monkeypatch, tmp_path, plugins):
    (tmp_path / "acme_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.update({"acme": "acme_plugin:make", "acme-fast-onehot-cuda": "acme_plugin:make_cuda",
                    "acme-broken": "acme_gone:make"})
    return plugins


def test_plugins_are_selected_by_entry_point_name_and_glob(acme):
    assert [s.id for s in select(["acme"], devices=["cpu"])] == ["acme-gather", "acme-onehot"]
    slots = {s.id: s for s in select(["acme*"], devices=["cpu"])}
    assert list(slots) == ["acme-gather", "acme-onehot", "acme-fast-onehot-cuda", "acme-broken"]
    assert slots["acme-fast-onehot-cuda"].skip_reason == "acme sees no CUDA device"
    # an installed entry point whose module is gone is that plug-in's failure, not a config error
    assert "acme_gone" in slots["acme-broken"].load_error and slots["acme-broken"].adapter is None


def test_a_skipped_cuda_adapter_is_described_by_its_id(acme):
    info = describe_slot(Slot("keras-jax-onehot-cuda", skip_reason="no GPU"))
    assert (info["framework"], info["variant"], info["device"]) == ("keras", "onehot", "cuda")
    assert info["skip_reason"] == "no GPU" and info["load_error"] is None
    broken = describe_slot(Slot("fault_adapters:raises", load_error="factory failed"))
    assert broken["load_error"] == "factory failed" and broken["device"] == "cpu"
    # a plug-in's skipped CUDA adapter, named by its entry point: framework and variant from the name
    (slot,) = select(["acme-fast-*"], devices=["cpu"])
    plugin = describe_slot(slot)
    assert (plugin["id"], plugin["framework"], plugin["variant"], plugin["device"]) == (
        "acme-fast-onehot-cuda", "acme", "onehot", "cuda")
    assert plugin["skip_reason"] == "acme sees no CUDA device"


def test_a_loaded_adapter_describes_itself_and_a_broken_describe_is_its_failure(acme):
    slots = {s.id: s for s in select(["acme"], devices=["cpu"])}
    info = describe_slot(slots["acme-onehot"])
    assert (info["framework"], info["variant"], info["skip_reason"], info["load_error"]) == (
        "acme", "onehot", None, None)
    adapter = slots["acme-gather"].adapter
    adapter.versions = lambda: 1 / 0
    broken = describe_slot(slots["acme-gather"])
    assert broken["load_error"].startswith("describe() failed: ZeroDivisionError") and broken["variant"] == "gather"

