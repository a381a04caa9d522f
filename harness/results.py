"""Where results live and how they are written: atomically, one folder per machine."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.errors import CorruptResults
from harness.machine import machine_id

RESULTS_ROOT_ENV = "EMBEDDING_HARNESS_RESULTS"


def current_status(status: str, adapter: dict) -> str:
    """A cell's status in today's vocabulary. Documents written before ``not_applicable`` existed
    recorded it as ``skipped``; a check skipped on an adapter that itself ran (no ``skip_reason``)
    could only have been one that does not apply to it."""
    return "not_applicable" if status == "skipped" and not adapter.get("skip_reason") else status


def results_root() -> Path:
    return Path(os.environ.get(RESULTS_ROOT_ENV, "results"))


def machine_dir(root: Path | None = None, mid: str | None = None) -> Path:
    """``results/<machine-id>/``, created on demand. Only this machine's runs write here."""
    path = (root or results_root()) / (mid or machine_id())
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are for everyone to read
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    """Load a results JSON file, or raise CorruptResults naming the file and the fix."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CorruptResults(f"{path}: missing; re-run the session that writes it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptResults(
            f"{path}: not valid JSON ({exc}); re-run the session that writes it or delete the file"
        ) from None


LOCK_FILE = ".lock"


@contextlib.contextmanager
def locked(folder: Path, what: str = "results", stream=None):
    """Hold the folder's lock while reading, merging and writing its results, so two runs
    that finish together take turns instead of overwriting each other (flock: released by
    the kernel if the holder dies)."""
    stream = stream or sys.stderr  # looked up per call: the one at import may be closed
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stream.write(f"{what}: waiting for another run to finish writing {folder}\n")
            started = time.monotonic()
            fcntl.flock(handle, fcntl.LOCK_EX)
            stream.write(f"{what}: got {folder} after {time.monotonic() - started:.1f} s\n")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def set_aside(path: Path) -> Path:
    """Rename an unreadable results file out of the way (kept for inspection, never lost)."""
    path = Path(path)
    target = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(path, target)
    return target
