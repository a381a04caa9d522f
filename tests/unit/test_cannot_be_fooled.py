"""Conformance that cannot be fooled: the strategies reach where bugs live, probes tell the
truth one id at a time, every failure's snippet reproduces it, declarations are checked for
typos, and the plug-in API fits layers, forward-only runtimes and one-hot twins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import broken_adapters
import numpy as np
import pytest
from hypothesis import find, settings

from examples.layer_embedding import make_adapters
from harness import check_adapter, layouts
from harness.adapter import Declared
from harness.checks import CHECKS, run_check, sequential_sum_of_ones
from harness.dtypes import np_dtype
from harness.errors import HarnessError
from harness.registry import select
from harness.repro import array_literal
from harness.strategies import lookup_cases

ROOT = Path(__file__).parents[2]
HERE = Path(__file__).parent


# --- strategies reach the space where bugs live -----------------------------------------------
@pytest.mark.parametrize(("what", "condition"), [
    ("a table past 2**16 rows", lambda c: c.vocab > 2**16),
    ("a table of 2**15 - 1 .. 2**15 + 1 rows", lambda c: 2**15 - 1 <= c.vocab <= 2**15 + 1),
    ("a square table", lambda c: c.vocab == c.weights.shape[1] and c.vocab > 5),
    ("a width past a 512-bit register", lambda c: c.weights.shape[1] > 16 and c.weights.shape[1] % 16),
    ("a Fortran-ordered table", lambda c: c.weights.flags.f_contiguous and not c.weights.flags.c_contiguous),
    ("Fortran-ordered ids", lambda c: layouts.kind(c.ids)[0] == "F" and c.ids.ndim >= 2),
    ("rank-3 ids with permuted axes", lambda c: layouts.kind(c.ids)[0] == "transposed"),
    ("strided ids", lambda c: layouts.kind(c.ids)[0] == "strided"),
    ("a batch past 1024 ids", lambda c: c.ids.size > 1024),
    ("an id past 2**16 in use", lambda c: c.ids.size and int(c.ids.max()) >= 2**16),
    ("a negative (wrapping) id", lambda c: c.ids.size and int(c.ids.min()) < 0),
    ("an upstream value above 1e20", lambda c: np.abs(c.upstream.astype(np.float64)).max(initial=0) > 1e20),
])
def test_the_strategies_reach(what, condition):
    strategy = lookup_cases("float32", ("int32", "int64"), with_upstream=True, negative=True)
    found = find(strategy, condition, settings=settings(max_examples=3000, database=None, deadline=None))
    assert condition(found), what


def test_one_hot_cases_stay_within_their_cell_budget():
    strategy = lookup_cases("float32", ("int32",), onehot=True)
    found = find(strategy, lambda c: c.vocab > 2**16, settings=settings(max_examples=3000, database=None))
    assert found.ids.size * found.vocab <= 2**22


# --- probes -------------------------------------------------------------------------------------
def test_one_bad_id_at_a_time_and_garbage_is_undefined():
    result = run_check(broken_adapters.NegativeOneReadsGarbage(), "negative_index")
    assert result.status == "failed" and result.observed["negative_index"] == "undefined"
    detail = result.observed["negative_index_detail"]
    assert "id -1: undefined (rows that do not follow the table" in detail and "id -2: raise (IndexError" in detail


def test_raise_means_the_bad_id_raised_not_the_adapter():
    class BrokenEverywhere(broken_adapters.Faithful):
        id = "broken-everywhere"
        declared = broken_adapters._declared(negative_index="raise")

        def prepare_weights(self, weights):
            raise RuntimeError("cannot load any table")

    for check in ("negative_index", "out_of_range"):
        result = run_check(BrokenEverywhere(), check)
        assert result.status == "failed" and "control call with valid ids raised RuntimeError" in result.detail


def test_faithful_outcomes_are_observed_per_id():
    negative = run_check(broken_adapters.Faithful(), "negative_index")
    out = run_check(broken_adapters.Faithful(), "out_of_range")
    assert negative.status == out.status == "passed"
    assert negative.observed["negative_index"] == "wrap" and "id -5: clamp/wrap" in negative.observed[
        "negative_index_detail"]  # -V is row 0 either way
    assert out.observed["out_of_range"] == "raise" and "id 2147483647: raise (IndexError" in out.observed[
        "out_of_range_detail"]


# --- checks nothing else holds --------------------------------------------------------------------
@pytest.mark.parametrize(("adapter", "check", "words"), [
    (broken_adapters.RenormalisesInPlace(), "weights_unchanged", "changed its input W in place"),
    (broken_adapters.CachesFirstTable(), "inputs_not_cached", "output values differ from W[ids]"),
    (broken_adapters.StaleGradientBuffer(), "inputs_not_cached", "gradient differs from the scatter-add"),
    (broken_adapters.NarrowsIdsToUint16(), "large_vocab_and_batch", "output values differ from W[ids]"),
    (broken_adapters.ReadsUint8AsInt8(), "index_dtypes", "accepted ['uint8'] but returned rows other than W[ids]"),
    (broken_adapters.NondeterministicGradient(), "deterministic", "gradient differs between identical calls"),
])
def test_each_new_check_catches_its_bug(adapter, check, words):
    result = run_check(adapter, check)
    assert result.status == "failed" and words in result.detail
    assert run_check(broken_adapters.Faithful(), check).status == "passed"


def test_a_declared_saturation_cannot_excuse_a_wrong_sum():
    result = run_check(broken_adapters.CountsHitsInUint8(), "low_precision_accumulation[float16]")
    assert result.status == "failed"  # declared as a deviation, yet not that deviation
    assert "but this is not that deviation" in result.detail and "stalls there" in result.detail


def test_saturation_points_are_computed_not_typed():
    assert sequential_sum_of_ones("float16", 3000) == 2048.0
    assert sequential_sum_of_ones("bfloat16", 1000) == 256.0
    assert sequential_sum_of_ones("float32", 3000) == 3000.0


# --- snippets that always run ---------------------------------------------------------------
@pytest.mark.parametrize("array", [
    np.zeros((0, 3), np.float32),
    np.full((3, 4), 0.5).astype(np_dtype("bfloat16")),
    np.array([np.nan, -0.0, np.inf, -np.inf, 3e-39]).astype(np.float32),
    np.full((9,), -0.0, np.float64),
    layouts.arrange(np.arange(24).reshape(2, 3, 4), "transposed"),
    layouts.arrange(np.arange(12).reshape(3, 4), "F"),
    layouts.arrange(np.arange(10, dtype=np.uint16), "strided"),
    np.array(7, dtype=np.int8),
])
def test_array_literals_rebuild_values_shape_dtype_and_layout(array):
    rebuilt = eval(array_literal(array), {"np": np, "np_dtype": np_dtype})
    assert rebuilt.shape == array.shape and rebuilt.dtype == array.dtype
    assert np.array_equal(np.ascontiguousarray(rebuilt).view(f"u{array.dtype.itemsize}"),
                          np.ascontiguousarray(array).view(f"u{array.dtype.itemsize}"))
    assert layouts.kind(rebuilt)[0] == layouts.kind(array)[0]


SNIPPET_SOURCES = [  # failures of every kind: shrunk properties, recipes, probes, crashes, layouts
    ("LosesDuplicates", "gradient[float32]"), ("NarrowsIdsToInt16", "forward[float32]"),
    ("NarrowsIdsToUint16", "large_vocab_and_batch"), ("IgnoresStrides", "forward[float64]"),
    ("IgnoresFortranWeights", "forward[float32]"), ("EmptyBatchCrashes", "empty_batch"),
    ("ScalarIdKeepsAxis", "scalar_id"), ("OutOfRangeZerosSilently", "out_of_range"),
    ("ReadsUint16AsInt16", "index_dtypes"), ("NondeterministicGradient", "deterministic"),
    ("Float16Upstream", "gradient[float64]"), ("RenormalisesInPlace", "weights_unchanged"),
]


def test_every_failure_carries_a_snippet_that_reproduces_it_in_a_fresh_interpreter():
    snippets = []
    for name, check in SNIPPET_SOURCES:
        adapter = getattr(broken_adapters, name)()
        adapter.source = "broken_adapters:make_broken"
        result = run_check(adapter, check)
        assert result.status == "failed", (name, check)
        code = result.detail.split("--- reproduce ---\n", 1)[1].split("\nFalsifying example")[0]
        snippets.append({"name": name, "code": code.split("\nFailing test case")[0],
                         "crash": "raised" in result.detail.split("--- reproduce ---")[0]})
    runner = ("import json, sys, traceback\nout = []\nfor s in json.load(sys.stdin):\n"
              "    try:\n        exec(s['code'], {})\n        out.append([s['name'], 'ran'])\n"
              "    except Exception as exc:\n        out.append([s['name'], type(exc).__name__])\n"
              "print(json.dumps(out))\n")
    proc = subprocess.run([sys.executable, "-c", runner], input=json.dumps(snippets), capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcomes = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    for s in snippets:
        # A wrong value: the snippet prints both sides. A crash: the snippet raises it again.
        assert (outcomes[s["name"]] != "ran") == s["crash"], (s["name"], outcomes[s["name"]], s["code"])


# --- declarations and the plug-in API ----------------------------------------------------------
def test_python_m_harness_checks_lists_every_check():
    proc = subprocess.run([sys.executable, "-m", "harness", "checks"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0
    assert [line.split()[0] for line in proc.stdout.splitlines()] == [c.name for c in CHECKS]


def test_an_unknown_check_name_in_a_declaration_is_an_error():
    typo = broken_adapters.Faithful()
    typo.declared = Declared(deviations={"negative_idx": "typo"})
    with pytest.raises(HarnessError, match=r"unknown check\(s\) \['negative_idx'\].*python -m harness checks"):
        check_adapter(typo)


def test_a_plugin_with_a_typo_in_its_declaration_is_that_plugins_failure(tmp_path, monkeypatch):
    (tmp_path / "typo_plugin.py").write_text(
        "from harness import Declared\nfrom examples.my_embedding import MyEmbedding\n"
        "class Typo(MyEmbedding):\n    id = 'typo'\n    declared = Declared(not_applicable={'scalar': 'x'})\n"
        "def make():\n    return Typo()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    [slot] = select(["typo_plugin:make"], devices=["cpu"])
    assert slot.adapter is None and "not_applicable names unknown check(s) ['scalar']" in slot.load_error


def test_layers_forward_only_runtimes_and_one_hot_twins_by_plugin_id():
    results = {}
    for adapter in make_adapters():
        adapter.source = "examples.layer_embedding:make_adapters"
        results[adapter.id] = {r.check: r for r in check_adapter(adapter)}
    assert not [c for r in results.values() for c, v in r.items() if v.status == "failed"]
    assert results["layer-onehot"]["onehot_agrees_with_gather"].status == "passed"  # twin made by its factory
    inference = results["layer-inference"]
    assert inference["forward[float32]"].status == "passed" and inference["scalar_id"].status == "passed"
    assert all(inference[c].status == "not_applicable" and "forward-only" in inference[c].detail
               for c in ("gradient[float32]", "duplicates_accumulate", "gradient_representation"))


def test_a_plugin_whose_framework_is_not_in_the_extras_runs_under_the_runner(tmp_path):
    """What nox -s conformance runs: a library the project does not install, on PYTHONPATH."""
    (tmp_path / "tinyembed").mkdir()
    (tmp_path / "tinyembed" / "__init__.py").write_text(
        "import numpy as np\n__version__ = '0.0.1'\n"
        "def lookup(table, ids):\n    return np.take(table, ids, axis=0)\n")
    (tmp_path / "tiny_adapter.py").write_text(
        "import numpy as np, tinyembed\nfrom examples.my_embedding import MyEmbedding\n"
        "class Tiny(MyEmbedding):\n    id, framework = 'tinyembed-gather', 'tinyembed'\n"
        "    def versions(self):\n        return {'tinyembed': tinyembed.__version__}\n"
        "    def forward(self, weights, ids):\n        return tinyembed.lookup(weights, ids)\n"
        "def make():\n    return Tiny()\n")
    env = {**os.environ, "EMBEDDING_HARNESS_ADAPTERS": "tiny_adapter:make", "EMBEDDING_HARNESS_RESULTS": str(tmp_path),
           "EMBEDDING_HARNESS_MACHINE_ID": "tiny-box", "HYPOTHESIS_PROFILE": "ci",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "harness.conformance", "run"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "tiny-box" / "conformance.json").read_text())
    [entry] = doc["adapters"]
    assert entry["versions"] == {"tinyembed": "0.0.1"} and entry["counts"]["failed"] == 0


def test_the_kill_rate_runner_reports_a_survivor(tmp_path):
    (tmp_path / "no_bug.py").write_text(
        f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport broken_adapters as b\n"
        "class NotABug(b.Faithful):\n    '''Claims a bug it does not have.'''\n    id = 'not-a-bug'\n"
        "def make_broken():\n    return [NotABug()]\n"
        "def make_control():\n    return b.Faithful()\n")
    proc = subprocess.run([sys.executable, "-m", "harness.killrate", "no_bug", "--jobs", "2"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])})
    assert proc.returncode == 1
    assert "Kill rate: **0/1**" in proc.stdout
    assert "not-a-bug | Claims a bug it does not have. | **SURVIVED**" in proc.stdout
    assert "survivors ['not-a-bug']" in proc.stderr
    never = "**Never shown to fail** (no broken adapter fails them): bag_agrees_with_gather_bag, bag_empty,"
    assert never in proc.stdout


def test_a_check_no_broken_adapter_fails_is_named_unproven():
    from harness.checks import CHECKS_BY_NAME
    from harness.killrate import failed_by, unproven

    shown = failed_by([{"id": "a", "killed_by": ["gradient[float16]", "scalar_id"]},
                       {"id": "b", "killed_by": ["gradient[float16]", "gradient[float64]"]}])
    assert shown["gradient[float16]"] == ["a", "b"] and shown["scalar_id"] == ["a"]
    assert shown["gradient[float32]"] == []  # each dtype must be shown failing on its own
    assert unproven({"failed_by": shown}) == sorted(
        set(CHECKS_BY_NAME) - {"gradient[float16]", "gradient[float64]", "scalar_id"})
    everything = failed_by([{"id": "all", "killed_by": list(CHECKS_BY_NAME)}])
    assert unproven({"failed_by": everything}) == []


def test_gradient_cases_stay_inside_the_summation_bound():
    """Past (k-1)*u = 1 Higham's bound goes negative; the strategies never go there."""
    from harness.strategies import wrapped
    from harness.tolerance import gamma, max_hits

    assert np.isinf(gamma(np.array([256]), 2.0**-8)).all() and gamma(np.array([127]), 2.0**-8)[0] < 1
    strategy = lookup_cases("bfloat16", ("int32",), max_vocab=6, with_upstream=True)
    found = find(strategy, lambda c: c.ids.size >= 255,
                 settings=settings(max_examples=3000, database=None, deadline=None))
    hits = np.bincount(wrapped(found.ids, found.vocab).reshape(-1)).max()
    assert hits <= max_hits("bfloat16") == 129


def test_inline_code_needs_no_escaping_and_survives_backticks():
    from harness.views import mdtext

    assert mdtext.code("linux-x86_64") == "`linux-x86_64`"
    assert mdtext.code("a`b") == "``a`b``"
