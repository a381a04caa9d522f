"""Where results live and how they are written: atomically, one folder per machine."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import CorruptResults
from harness.machine import machine_id

RESULTS_ROOT_ENV = "EMBEDDING_HARNESS_RESULTS"


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
