"""One exception family: every error edgekd raises on purpose is an EdgeKDError."""

from __future__ import annotations

import importlib


class EdgeKDError(Exception):
    """Base of all edgekd errors."""


class ConfigError(EdgeKDError):
    """A target, recipe or option is invalid (names the file and field)."""


class OutputError(ConfigError):
    """The output folder cannot be used: a file, read-only, full, outside paths, or not edgekd's to replace."""


class LockedError(OutputError):
    """Another build holds the output folder's lock (names the holder's pid)."""

    def __init__(self, message: str, pid: int | None = None):
        super().__init__(message)
        self.pid = pid


class ArtifactNotFoundError(ConfigError):
    """No edgekd artifact at the given path."""


class ArtifactLoadError(EdgeKDError):
    """An artifact's model file is recorded and intact but its runtime cannot load it (corrupt at build time)."""


class IntegrityError(EdgeKDError):
    """An artifact file does not match the sha256 recorded in its artifact.json (tampered or corrupted)."""


class DataError(EdgeKDError):
    """The data or the models' shapes do not fit together."""


class CheckpointError(EdgeKDError):
    """A checkpoint cannot be read or does not belong to this run."""


class CompileError(EdgeKDError):
    """A backend could not compile the model (names the operator and backend)."""


class ValidationError(EdgeKDError):
    """An artifact could not be validated."""


class NotRunHere(ValidationError):
    """An artifact exists but cannot run on this machine (no device, SDK or OS); says what it needs."""


class MissingExtraError(EdgeKDError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str):
        super().__init__(f"{package} is not installed: pip install 'edgekd[{extra}]'")
        self.package = package
        self.extra = extra


def require(module: str, extra: str):
    """Import an optional heavy module, or raise a one-line error naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc
