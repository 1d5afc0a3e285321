"""Backends: one module per runtime behind one protocol, imported lazily by name."""

from edgekd.backends.base import (ARTIFACT_FILENAME, Artifact, Backend, Runner, backend_entry, get_backend,
                                  list_backends)

__all__ = ["ARTIFACT_FILENAME", "Artifact", "Backend", "Runner", "backend_entry", "get_backend", "list_backends"]
