"""``edgekd.load``: open a compiled artifact in its own runtime."""

from __future__ import annotations

import logging
from pathlib import Path

from edgekd.backends.base import Artifact, Runner, get_backend

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
    return get_backend(artifact.backend).load(artifact, threads=threads)
