"""harness/results.py on its own: where results go, how they are written and read back."""

import os
import re
import stat
from pathlib import Path

import pytest

from harness import results
from harness.errors import CorruptResults


def test_the_results_root_is_the_env_var_or_results(monkeypatch):
    monkeypatch.delenv(results.RESULTS_ROOT_ENV, raising=False)
    assert results.results_root() == Path("results")
    monkeypatch.setenv(results.RESULTS_ROOT_ENV, "/data/runs")
    assert results.results_root() == Path("/data/runs")


def test_machine_dir_creates_missing_parents_and_accepts_an_existing_one(tmp_path, monkeypatch):
    deep = tmp_path / "a" / "b"
    assert results.machine_dir(deep, "box") == deep / "box" and (deep / "box").is_dir()
    assert results.machine_dir(deep, "box") == deep / "box"  # a second call is not an error
    monkeypatch.setenv(results.RESULTS_ROOT_ENV, str(tmp_path / "env-root"))
    assert results.machine_dir(None, "other") == tmp_path / "env-root" / "other"


def test_atomic_writes_create_parents_honour_the_umask_and_leave_no_temporary(tmp_path):
    old = os.umask(0o027)
    try:
        target = tmp_path / "new" / "deeper" / "x.bin"
        results.atomic_write_bytes(target, b"\x00\x01")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # 0o666 minus the umask, not mkstemp's 0600
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.bin"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    target.write_text("old")

    def broken_replace(src, dst):
        assert Path(src).name.startswith(".x.json.") and Path(src).parent == tmp_path  # beside it
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        results.atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_json_is_written_utf8_indented_in_insertion_order_with_unknown_types_as_text(tmp_path):
    target = tmp_path / "d.json"
    results.atomic_write_json(target, {"z": 1, "a": [Path("/p")], "é": "ü"})
    assert target.read_bytes().decode("utf-8") == '{\n  "z": 1,\n  "a": [\n    "/p"\n  ],\n  "\\u00e9": "\\u00fc"\n}\n'
    assert results.read_json(target) == {"z": 1, "a": ["/p"], "é": "ü"}


def test_read_json_names_the_file_and_the_fix(tmp_path):
    missing = tmp_path / "gone.json"
    with pytest.raises(CorruptResults) as err:
        results.read_json(missing)
    assert str(err.value) == f"{missing}: missing; re-run the session that writes it"
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": ')
    with pytest.raises(CorruptResults, match=r"broken.json: not valid JSON \(.*\); re-run .* or delete the file"):
        results.read_json(broken)
    latin = tmp_path / "latin.json"
    latin.write_bytes('{"a": "\xe9"}'.encode("latin-1"))
    with pytest.raises(CorruptResults, match="not valid JSON"):
        results.read_json(latin)
    utf8 = tmp_path / "utf8.json"
    utf8.write_bytes('{"a": "é"}'.encode())
    assert results.read_json(utf8) == {"a": "é"}


def test_set_aside_keeps_the_file_under_a_timestamped_name(tmp_path):
    bad = tmp_path / "conformance.json"
    bad.write_text("{")
    kept = results.set_aside(bad)
    assert not bad.exists() and kept.read_text() == "{"
    assert re.fullmatch(r"conformance\.json\.unreadable-\d{8}T\d{6}", kept.name), kept.name


def test_current_status_reads_old_skips_by_whether_the_adapter_itself_was_skipped():
    assert results.current_status("skipped", {"id": "a", "skip_reason": None}) == "not_applicable"
    assert results.current_status("skipped", {"id": "a"}) == "not_applicable"
    assert results.current_status("skipped", {"id": "a", "skip_reason": "jax missing"}) == "skipped"
    for status in ("passed", "failed", "xfailed", "not_applicable"):
        assert results.current_status(status, {"id": "a"}) == status


def test_the_lock_says_when_it_waits_and_when_it_got_the_folder(tmp_path):
    import fcntl
    import io
    import threading

    holder = open(tmp_path / results.LOCK_FILE, "a")
    fcntl.flock(holder, fcntl.LOCK_EX)
    threading.Timer(0.3, lambda: fcntl.flock(holder, fcntl.LOCK_UN)).start()
    out = io.StringIO()
    with results.locked(tmp_path, "bench", out):
        pass
    holder.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == f"bench: waiting for another run to finish writing {tmp_path}"
    assert re.fullmatch(rf"bench: got {re.escape(str(tmp_path))} after 0\.\d s", lines[1]), lines
    quiet = io.StringIO()
    with results.locked(tmp_path, "bench", quiet), open(tmp_path / results.LOCK_FILE, "a") as other:
        with pytest.raises(BlockingIOError):  # held while the body runs
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert quiet.getvalue() == ""
