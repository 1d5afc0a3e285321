"""Atomic file writes: a reader never sees a half-written file."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgekd.errors import OutputError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _full(exc, path) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts get the usual permissions
        os.replace(tmp_path, path)
    except OSError as exc:
        raise _full(exc, path) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    return path


def _full(exc: OSError, path: Path) -> Exception:
    """A full disk as one OutputError naming the file ("no space left on <path>"); other errors as they are."""
    return no_space(exc, path) or exc


def staging_dir(parent: Path, prefix: str) -> Path:
    """A fresh folder in ``parent`` that will be renamed into place: the usual permissions, not mkdtemp's 0700."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, 0o777 & ~_umask())
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda p: p.write_bytes(data))


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def cache_dir() -> Path:
    """Where edgekd keeps trained teachers: $EDGEKD_CACHE_DIR or ~/.cache/edgekd."""
    root = os.environ.get("EDGEKD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "edgekd"
    )
    return Path(root)


def no_space(exc: OSError, path: str | Path) -> OutputError | None:
    """The one-line error for a full disk, or None when ``exc`` is something else."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"no space left on {path}")
    return None
