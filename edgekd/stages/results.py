"""What a build returns per target and overall (``edgekd.build_all``'s :class:`MatrixResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from edgekd.backends.base import Artifact
from edgekd.schema.sections import Status


@dataclass
class TargetResult:
    """One target's outcome: ``status`` is a :class:`~edgekd.schema.sections.Status`."""

    target: str
    status: Status
    reason: str = ""
    report: dict | None = None
    artifact: Artifact | None = None
    teacher_artifact: Artifact | None = None  # the teacher compiled for this target: the row to beat
    student: nn.Module | None = field(default=None, repr=False)  # the distilled model this artifact was built from
    history: list = field(default_factory=list, repr=False)  # its distillation's per-epoch record
    error: BaseException | None = field(default=None, repr=False)  # what stopped it, for status ERROR

    @property
    def built(self) -> bool:
        return self.artifact is not None

    @property
    def passed(self) -> bool:
        return self.status == Status.PASSED


@dataclass
class MatrixResult:
    """What ``edgekd.build_all`` returns: per-target results, the manifest and the HTML report."""

    results: list[TargetResult]
    out_dir: Path
    manifest: dict = field(default_factory=dict)
    manifest_path: Path | None = None
    html_path: Path | None = None
    seconds: float = 0.0

    def __getitem__(self, name: str) -> TargetResult:
        for r in self.results:
            if r.target == name:
                return r
        raise KeyError(name)

    @property
    def ok(self) -> bool:
        """Every target built, and every target validated here passed its gate."""
        return all(r.status in (Status.PASSED, Status.NOT_RUN) for r in self.results)

    def by_status(self, status: str) -> list[TargetResult]:
        return [r for r in self.results if r.status == status]
