"""``edgekd.load``: open a compiled artifact in its own runtime."""

from __future__ import annotations

from pathlib import Path

from edgekd.backends.base import Artifact, Runner, get_backend


def load(path: str | Path | Artifact, threads: int = 1) -> Runner:
    """Load an artifact (its folder, its ``artifact.json`` or its model file) and return a runner.

    The runner takes float32 NCHW numpy arrays (already normalized as the preprocessing spec
    says) and returns numpy logits, computed by the artifact's runtime, not by PyTorch.
    """
    artifact = path if isinstance(path, Artifact) else Artifact.read(path)
    return get_backend(artifact.backend).load(artifact, threads=threads)
