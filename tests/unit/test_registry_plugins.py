"""How the registry reports plug-ins that break, and what it records about adapters it could
not load: exact texts, since they are what a user reads in the matrix."""

import sys
import textwrap

import pytest

from harness import registry
from harness.errors import UnknownAdapter


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """Write ``name.py`` with ``source`` and make it importable."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        sys.modules.pop(name, None)
        return name

    return write


def test_a_load_error_is_the_exception_then_its_last_two_frames():
    def inner():
        raise ValueError("bad table  ")

    def middle():
        inner()

    def outer():
        middle()

    try:
        outer()
    except ValueError as exc:
        text = registry._load_error(exc)
    head, *frames = text.split("\n")
    assert head == "ValueError: bad table"
    assert "in middle" in frames[0] and "in inner" in text and "in outer" not in text
    assert not text.endswith("\n") and frames[0].startswith("  File ")
    assert registry._load_error(KeyError("k")) == "KeyError: 'k'"  # never raised: no frames


def test_a_module_that_raises_on_import_is_that_plugins_failure_with_the_frames(plugin_module):
    name = plugin_module("boom_on_import", """
        def helper():
            raise RuntimeError("no GPU context")
        helper()
        """)
    [slot] = registry._spec_slots(f"{name}:make", label="my-label")
    assert slot.id == "my-label" and slot.adapter is None
    assert slot.load_error.startswith(f"importing '{name}:make' failed: RuntimeError: no GPU context\n")
    assert "in helper" in slot.load_error


def test_a_factory_that_raises_names_the_factory_and_the_frame(plugin_module):
    name = plugin_module("boom_in_factory", """
        def make():
            raise TypeError("missing argument")
        """)
    [slot] = registry._spec_slots(f"{name}:make")
    assert slot.id == f"{name}:make"
    assert slot.load_error.startswith(f"factory '{name}:make' failed: TypeError: missing argument\n")
    assert "in make" in slot.load_error


def test_a_factory_returning_no_adapters_is_refused_in_one_line(plugin_module):
    name = plugin_module("returns_junk", """
        def make():
            return 42
        """)
    [slot] = registry._spec_slots(f"{name}:make", label="junk")
    assert slot.id == "junk" and slot.load_error.startswith(f"factory '{name}:make' failed: ")
    assert "\n" not in slot.load_error  # a HarnessError is its own message, no traceback


def test_a_missing_module_is_a_configuration_error_for_a_typed_spec_and_a_failure_for_an_entry_point():
    with pytest.raises(UnknownAdapter):
        registry._spec_slots("no_such_module_anywhere:make")
    [slot] = registry._spec_slots("no_such_module_anywhere:make", label="ep", missing_module_is_error=True)
    assert slot.id == "ep" and "no_such_module_anywhere" in slot.load_error


def test_requested_specs_from_the_variable_or_none():
    assert registry.requested_specs({}) is None
    assert registry.requested_specs({registry.ENV_VAR: "  "}) is None
    assert registry.requested_specs({registry.ENV_VAR: " numpy-*, ,a:b "}) == ["numpy-*", "a:b"]


def test_select_without_specs_reads_the_variable(monkeypatch):
    monkeypatch.setenv(registry.ENV_VAR, "numpy-gather")
    assert [s.id for s in registry.select(devices=["cpu"])] == ["numpy-gather"]


def test_select_of_everything_is_every_builtin_then_every_entry_point(monkeypatch):
    monkeypatch.delenv(registry.ENV_VAR, raising=False)
    monkeypatch.setattr(registry, "entry_points", lambda: {"ep-one": "examples.my_embedding:make_adapter"})
    ids = [s.id for s in registry.select(devices=["cpu"])]
    opt_in = registry.opt_in()
    builtins = [i for i in registry.known_adapters() if i not in opt_in]  # opt-in ones run only when named
    assert ids[:len(builtins)] == builtins and ids[-1] == "my-embedding"
    assert opt_in and set(opt_in) <= set(registry.known_adapters())


def test_an_unknown_spec_lists_every_known_id(monkeypatch):
    monkeypatch.setattr(registry, "entry_points", lambda: {"ep-one": "x:y"})
    with pytest.raises(UnknownAdapter) as err:
        registry.match_spec("nope-*")
    known = ", ".join([*registry.known_adapters(), "ep-one"])
    assert str(err.value) == (f"unknown adapter 'nope-*' in {registry.ENV_VAR}; use a built-in or plug-in id "
                              f"({known}), a glob over them, or 'module:factory'")


def test_an_adapter_that_did_not_load_is_described_by_its_id():
    skipped = registry.Slot("keras-jax-onehot-cuda", skip_reason="jax missing")
    assert registry.describe_slot(skipped) == {
        "id": "keras-jax-onehot-cuda", "framework": "keras", "variant": "onehot", "device": "cuda", "source": "",
        "versions": {}, "declared": {}, "skip_reason": "jax missing", "load_error": None}
    bare = registry.describe_slot(registry.Slot("plugin", load_error="boom"))  # no dash: the id is both
    assert (bare["framework"], bare["variant"], bare["device"], bare["load_error"]) == ("plugin", "plugin", "cpu",
                                                                                         "boom")
    assert registry.describe_slot(registry.Slot("odd-", load_error="x"))["variant"] == "?"
