"""The typed vocabulary of a build's outcome, shared by the stages, the report writers and the CLI."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """One target's outcome. A ``str`` enum: it compares equal to, and serializes as, its value."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not run here"  # built here; its runtime or device is not here
    NOT_BUILT = "not built here"  # its compiler or SDK is not here
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


STATUSES = tuple(Status)
