"""``edgekd.load``: open a compiled artifact in its own runtime."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekd.backends.base import Artifact, Backend, Runner, backend_entry, get_backend
from edgekd.errors import ArtifactLoadError, ConfigError, EdgeKDError, MissingExtraError

log = logging.getLogger(__name__)


def load(path: str | Path | Artifact, threads: int = 1, *, verify: bool = True) -> Runner:
    """Load an artifact (its folder, its ``artifact.json`` or its model file) and return a runner.

    The runner takes float32 NCHW numpy arrays (already normalized as the preprocessing spec
    says) and returns numpy logits, computed by the artifact's runtime, not by PyTorch.

    With ``verify`` (the default) every file artifact.json lists must match its recorded sha256,
    else :class:`~edgekd.errors.IntegrityError`; ``verify=False`` skips the check (logged).
    """
    artifact = path if isinstance(path, Artifact) else Artifact.read(path)
    if verify:
        artifact.verify()
    else:
        log.warning("%s: loading without verifying its sha256 (verify=False)", artifact.path)
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024:
        raise ConfigError(f"threads: expected an integer from 1 to 1024, got {threads!r}")
    backend = _backend(artifact.backend)
    try:
        return backend.load(artifact, threads=threads)
    except EdgeKDError:
        raise
    except Exception as exc:  # noqa: BLE001 - each runtime raises its own types for a file it cannot parse
        raise ArtifactLoadError(f"{artifact.path}: the {artifact.backend} runtime cannot load it "
                                f"({type(exc).__name__}: {str(exc)[:200]})") from exc


def load_file(path: str | Path, runtime: str, threads: int = 1) -> Callable[[np.ndarray], object]:
    """A bare model file (no artifact record) in ``runtime``'s backend, as ``run(x)`` returning the
    runtime's raw outputs, unchecked: what :func:`edgekd.hw.profile` times.

    Raises:
        ConfigError: ``runtime`` is no backend, or one that runs artifacts only.
        MissingExtraError: the runtime is not installed (names the extra).
    """
    return _backend(runtime).load_file(Path(path), threads)


def _backend(name: str) -> Backend:
    """The backend ``name``; an SDK that fails to import names the extra to install."""
    try:
        return get_backend(name)
    except ImportError as exc:
        raise MissingExtraError(name, backend_entry(name).extra or "all") from exc
