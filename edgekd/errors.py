"""One exception family: every error edgekd raises on purpose is an EdgeKDError."""

from __future__ import annotations


class EdgeKDError(Exception):
    """Base of all edgekd errors."""


class ConfigError(EdgeKDError):
    """A target, recipe or option is invalid (names the file and field)."""


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
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module, extra) from exc
