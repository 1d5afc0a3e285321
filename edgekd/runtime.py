"""``edgekd.load``: open a compiled artifact in its own runtime."""

from __future__ import annotations

import logging
from pathlib import Path

from edgekd.backends.base import Artifact, Runner, backend_entry, get_backend
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
    try:
        backend = get_backend(artifact.backend)
    except ImportError as exc:
        raise MissingExtraError(artifact.backend, backend_entry(artifact.backend).extra or "all") from exc
    try:
        return backend.load(artifact, threads=threads)
    except EdgeKDError:
        raise
    except Exception as exc:  # noqa: BLE001 - each runtime raises its own types for a file it cannot parse
        raise ArtifactLoadError(f"{artifact.path}: the {artifact.backend} runtime cannot load it "
                                f"({type(exc).__name__}: {str(exc)[:200]})") from exc
