"""The whole report.json as one typed record: :class:`Report`, and its run, baseline, search and warning sections.

``Report.to_dict()`` is report.json; ``Report.from_dict()`` reads any report.json (or the partial
dicts tests build), so readers use typed fields and never chain ``.get``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgekd.schema.sections import (ArtifactSection, DatasetSection, DistillationSection, GateSection, ModelSection,
                                    Section, Status, TargetSection, _extra, _given)

REPORT_SCHEMA = "edgekd.report/1"


@dataclass
class LatencyRecord(Section):
    """A target's latency with its kind: ``measured`` here on the device, ``predicted``, or ``none``."""

    OPTIONAL = frozenset({"p90_ms", "note", "predicted_ms", "flops_proxy_mmac"})
    kind: str = "none"
    ms: float | None = None
    p90_ms: float | None = None
    note: str | None = None
    how: str | None = None
    predicted_ms: float | None = None
    model: dict = field(default_factory=dict)
    flops_proxy_mmac: float | None = None
    budget_ms: float | None = None
    within_budget: bool | None = None  # judged on ``ms``, measured or predicted (``kind`` says which)
    extra: dict = _extra()
    given: tuple = _given()


@dataclass
class RunSection(Section):
    """What happened to one target of a build: its status, why, what this machine can do, its latency."""

    status: Status | None = None
    reason: str = ""
    capability: dict = field(default_factory=dict)
    shared_distillation: str | None = None
    latency: LatencyRecord | None = None
    seconds: dict = field(default_factory=dict)
    extra: dict = _extra()
    given: tuple = _given()
    NESTED = {"status": Status, "latency": LatencyRecord}


@dataclass
class TeacherArtifactSection(Section):
    """The teacher compiled for the same target: the row to beat. ``status``: "run here" or a Status value."""

    OPTIONAL = frozenset({"target", "backend", "params", "latency_budget_ms", "path", "precision", "size_bytes",
                          "calibration", "accuracy", "agreement_teacher", "passes_accuracy_gate", "within_budget",
                          "latency_ms", "latency_p50_ms", "latency_kind", "latency_how", "reason", "speed_gate"})
    target: str | None = None
    backend: str | None = None
    params: int | None = None
    latency_budget_ms: float | None = None
    status: str | None = None
    reason: str | None = None
    path: str | None = None
    precision: str | None = None
    size_bytes: int | None = None
    calibration: dict | None = None
    accuracy: float | None = None
    agreement_teacher: float | None = None
    passes_accuracy_gate: bool | None = None
    within_budget: bool | None = None
    latency_ms: dict | None = None
    latency_p50_ms: float | None = None
    latency_kind: str | None = None
    latency_how: str | None = None
    speed_gate: dict | None = None  # int8 and fp32 both timed: the row is the faster (the student's rule)
    extra: dict = _extra()
    given: tuple = _given()


@dataclass
class VersusSection(Section):
    """The student artifact against the teacher artifact in the same runtime (and the torch-eager teacher)."""

    speedup_vs_compiled_teacher: float | None = None
    speedup_basis: str | None = None  # "measured" or "predicted": both latencies are of this kind
    speedup_vs_teacher_torch_eager: float | None = None
    accuracy_delta_points: float | None = None
    size_ratio: float | None = None
    params_ratio: float | None = None
    student_faster: bool | None = None
    student_smaller: bool | None = None
    teacher_fits: bool | None = None
    extra: dict = _extra()
    given: tuple = _given()


@dataclass
class ShipSection(Section):
    """Which artifact goes on the device and why."""

    OPTIONAL = frozenset({"artifact"})
    requested: str = "auto"
    choice: str = "student"  # "student" or "teacher"
    reason: str = ""
    artifact: str | None = None  # its path relative to the build folder
    extra: dict = _extra()
    given: tuple = _given()


@dataclass
class ChanceWarning(Section):
    """A teacher or student at or below the near-chance threshold (:mod:`edgekd.chance`)."""

    kind: str = "near_chance"
    model: str = ""  # "teacher" or "student"
    accuracy: float | None = None
    chance: float | None = None
    threshold: float | None = None
    causes: list = field(default_factory=list)  # codes: edgekd.chance.CAUSES
    message: str = ""
    extra: dict = _extra()
    given: tuple = _given()


@dataclass
class SearchSection(Section):
    """The student search's summary (built by :mod:`edgekd.search`); the keys readers use are typed."""

    OPTIONAL = frozenset({"outcome", "arch", "why", "fallback", "space", "score_name", "score",
                          "predicted_latency_ms", "proposals", "rejected", "seconds", "constraints", "finalists",
                          "chosen_by", "log", "plot", "candidates", "chosen", "latency_kind", "limits", "budget_ms"})
    outcome: str | None = None  # "found" or "none-fits"
    arch: Any = None
    why: str | None = None
    fallback: str | None = None
    space: str | None = None
    score_name: str | None = None
    score: float | None = None
    predicted_latency_ms: float | None = None
    proposals: int | None = None
    rejected: int | None = None
    seconds: float | None = None
    constraints: dict | None = None
    finalists: list | None = None
    chosen_by: str | None = None
    log: str | None = None
    plot: str | None = None
    candidates: list | None = None
    chosen: dict | None = None
    latency_kind: str | None = None
    limits: dict | None = None
    budget_ms: float | None = None
    extra: dict = _extra()
    given: tuple = _given()


@dataclass
class Report(Section):
    """One target's report.json. Sections absent from the report read back as None (or empty)."""

    OPTIONAL = frozenset({"warnings", "run", "teacher_artifact", "versus_teacher", "ship"})
    schema: str = REPORT_SCHEMA
    target: TargetSection = field(default_factory=TargetSection)
    dataset: DatasetSection = field(default_factory=DatasetSection)
    teacher: ModelSection = field(default_factory=ModelSection)
    student: ModelSection = field(default_factory=ModelSection)
    artifact: ArtifactSection = field(default_factory=ArtifactSection)
    distillation: DistillationSection = field(default_factory=DistillationSection)
    gate: GateSection = field(default_factory=GateSection)
    seconds: float | None = None
    environment: dict = field(default_factory=dict)
    search: SearchSection | None = None  # None: the student was given (or search=False)
    warnings: list | None = None
    run: RunSection | None = None  # a build_all target: its status, capability and latency record
    teacher_artifact: TeacherArtifactSection | None = None
    versus_teacher: VersusSection | None = None
    ship: ShipSection | None = None
    extra: dict = _extra()
    given: tuple = _given()
    NESTED = {"target": TargetSection, "dataset": DatasetSection, "teacher": ModelSection, "student": ModelSection,
              "artifact": ArtifactSection, "distillation": DistillationSection, "gate": GateSection,
              "search": SearchSection, "warnings": [ChanceWarning], "run": RunSection,
              "teacher_artifact": TeacherArtifactSection, "versus_teacher": VersusSection, "ship": ShipSection}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Report":
        """A report.json dict (or None: an empty report) as a typed record; missing sections are empty."""
        report = super().from_dict(data or {})
        for name in ("target", "dataset", "teacher", "student", "artifact", "distillation", "gate"):
            if getattr(report, name) is None:
                setattr(report, name, cls.NESTED[name]())
        return report

    @property
    def status(self) -> Status | None:
        """The target's outcome: the run section's, else the gate's."""
        return self.run.status if self.run is not None and self.run.status is not None else self.gate.status

    @property
    def latency(self) -> LatencyRecord | None:
        return self.run.latency if self.run is not None else None

    @property
    def near_chance(self) -> list[ChanceWarning]:
        return [w for w in self.warnings or [] if w.kind == "near_chance"]
