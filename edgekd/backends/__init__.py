"""Backends: one module per runtime behind one declared contract, imported lazily by name."""

from edgekd.backends.base import (ARTIFACT_FILENAME, BACKENDS, Artifact, Backend, BaseRunner, Runner, backend_entry,
                                  get_backend, list_backends)

__all__ = ["ARTIFACT_FILENAME", "Artifact", "BACKENDS", "Backend", "BaseRunner", "Runner", "backend_entry",
           "get_backend", "list_backends"]
