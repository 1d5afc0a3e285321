"""The output folder: paths kept inside it, deletion only of folders edgekd made, one build at a time.

Every folder edgekd creates under ``--out`` (an artifact folder, a compile's staging folder) carries
:data:`MARKER`; :func:`remove_created` deletes only such folders, and only inside the output folder,
so a bad name or a user's own folder of the same name never loses data.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from edgekd._io import write_json
from edgekd.errors import ConfigError, LockedError, OutputError
from edgekd.targets import is_slug

log = logging.getLogger(__name__)

MARKER = ".edgekd-created"
_MARKER_TEXT = "made by edgekd; edgekd may replace this folder on a rebuild\n"  # no timestamp: bit-identical


def inside(root: str | Path, path: str | Path) -> Path:
    """``path`` resolved, or a ConfigError when it does not lie inside ``root``."""
    root_r, path_r = Path(root).resolve(), Path(path).resolve()
    if path_r != root_r and root_r not in path_r.parents:
        raise OutputError(f"{path}: resolves to {path_r}, outside the output folder {root_r}; refusing to touch it")
    return path_r


def child(root: str | Path, name: str) -> Path:
    """``root/name`` for a name that must be one safe folder name (a target, a work label)."""
    if not is_slug(name):
        raise ConfigError(f"{name!r} is not a safe folder name (letters, digits, -, _, . not first; no separators)")
    path = inside(root, Path(root) / name)
    if path == Path(root).resolve():
        raise ConfigError(f"{name!r} names the output folder itself")
    return Path(root) / name


def mark_created(folder: str | Path) -> None:
    """Mark ``folder`` as made by edgekd, so a later rebuild may replace it."""
    (Path(folder) / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")


def is_created(folder: str | Path) -> bool:
    return (Path(folder) / MARKER).is_file()


def remove_created(folder: str | Path, root: str | Path) -> None:
    """Delete ``folder`` only if it lies inside ``root`` (not ``root`` itself) and edgekd made it."""
    path = inside(root, folder)
    if path == Path(root).resolve():
        raise OutputError(f"{folder}: is the output folder itself; refusing to delete it")
    if path.is_symlink() or not path.is_dir():
        raise OutputError(f"{folder}: not a folder edgekd made (a link or a file); refusing to replace it")
    if not is_created(path):
        raise OutputError(f"{folder}: exists but edgekd did not make it (no {MARKER}); move it away or pick "
                          "another --out")
    shutil.rmtree(path)


def clean_stale_staging(root: str | Path) -> list[str]:
    """Remove staging folders (``.<target>.*``) a killed compile left in ``root``; returns their names."""
    root = Path(root)
    removed = []
    if not root.is_dir():
        return removed
    for path in sorted(root.glob(".*")):
        if path.is_dir() and not path.is_symlink() and is_created(path) and path.name.count(".") >= 2:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    if removed:
        log.info("removed %d staging folder(s) left by an interrupted compile in %s", len(removed), root)
    return removed


def check_writable(out: str | Path) -> None:
    """Fail at once, writing nothing, when ``out`` cannot be (or hold) the output folder."""
    out = Path(out)
    existing = out
    while not existing.exists():  # the nearest existing ancestor must be a writable folder
        if existing.is_symlink():
            raise OutputError(f"--out {out}: {existing} is a dangling link")
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == out else f"lies under {existing}, which is a file"
        raise OutputError(f"--out {out}: {what}; the output folder must be a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out}: {existing} is not writable")


# one build at a time, and no report left claiming success over a rebuild that did not finish -----------------

LOCK = ".edgekd.lock"
STATE = "build-state.json"  # present only while a build runs, or after one was killed or failed
SUPERSEDED = ".superseded"  # suffix of a report a rebuild has begun to replace
TOP_REPORTS = ("manifest.json", "report.html")
TARGET_REPORTS = ("report.json", "report.md")


class OutputLock:
    """An exclusive ``flock`` on ``out/.edgekd.lock``; the kernel frees it when the holder dies (no stale locks)."""

    def __init__(self, out: str | Path):
        self.path = Path(out) / LOCK
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        import fcntl  # POSIX-only: imported where the lock is taken

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode("ascii", "replace").strip()
                os.close(fd)
                pid = int(holder) if holder.isdigit() else None
                raise LockedError(f"{self.path.parent}: another edgekd build (pid {holder or 'unknown'}) is writing "
                                  "this output folder; wait for it to finish or pick another --out", pid) from None
            try:  # the holder unlinks the file before it lets go: a lock on an unlinked file is no lock
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # whoever holds the lock names itself (a stale pid is harmless)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # while still held (see acquire), so no lock file is left behind
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def supersede(out: str | Path, targets: list[str]) -> list[Path]:
    """Rename the reports a rebuild will replace to ``*.superseded``; returns the renamed files."""
    out = Path(out)
    moved = []
    candidates = [out / n for n in TOP_REPORTS] + [child(out, t) / n for t in targets for n in TARGET_REPORTS]
    for path in candidates:
        if path.is_file() and not path.is_symlink():
            os.replace(path, path.with_name(path.name + SUPERSEDED))
            moved.append(path)
    return moved


def _write_state(out: Path, state: str, targets: list[str], error: str | None = None) -> None:
    record = {"state": state, "pid": os.getpid(), "targets": targets,
              "note": "reports named *.superseded belong to an earlier build; they do not describe the artifacts"}
    if error:
        record["error"] = error
    write_json(out / STATE, record)


class BuildTransaction:
    """Lock ``out``, mark the reports it replaces, and on success clear the marks (see :func:`guarded`)."""

    def __init__(self, out: str | Path, targets: list[str]):
        self.out, self.targets = Path(out), list(targets)
        self.lock = OutputLock(self.out)

    def __enter__(self) -> "BuildTransaction":
        check_writable(self.out)
        self.created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()
        try:
            clean_stale_staging(self.out)
            self.before = self._folders()
            _write_state(self.out, "in progress", self.targets)  # first: a kill from here on leaves this file
            self.superseded = supersede(self.out, self.targets)
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        try:
            if kind is None:
                for path in self.superseded:  # replaced by a fresh report: the old one goes
                    old = path.with_name(path.name + SUPERSEDED)
                    if path.exists() and old.exists():
                        old.unlink()
                (self.out / STATE).unlink(missing_ok=True)
            elif self._folders() == self.before:  # no artifact folder was replaced: the old build still stands
                for path in self.superseded:
                    os.replace(path.with_name(path.name + SUPERSEDED), path)
                (self.out / STATE).unlink(missing_ok=True)
            else:
                _write_state(self.out, "failed", self.targets, f"{kind.__name__}: {exc}")
        finally:
            self.lock.release()
        if kind is not None and self.created and not any(self.out.iterdir()):
            self.out.rmdir()
        return False

    def _folders(self) -> dict[str, int | None]:
        """Each target folder's inode (compile replaces a folder by renaming a new one onto it)."""
        out = {}
        for name in self.targets:
            try:
                out[name] = (self.out / name).stat().st_ino
            except FileNotFoundError:
                out[name] = None
        return out
