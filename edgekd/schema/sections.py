"""The typed vocabulary of a build's outcome, shared by the stages, the report writers and the CLI.

:class:`Status` is one target's outcome. The section dataclasses below are the parts of report.json
(the whole record is :class:`edgekd.schema.record.Report`). Each section writes exactly the keys
report.json has always had (``to_dict``) and reads any report.json, old or partial (``from_dict``):
keys a section does not type are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from enum import Enum
from typing import Any, ClassVar


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

TEACHER_RUN = "run here"  # the compiled teacher's status when it ran here (its other statuses are Status values)


def within_budget(ms: float | None, budget_ms: float | None) -> bool | None:
    """Whether a latency fits the target's budget; None when there is no budget or no figure to judge."""
    return None if budget_ms is None or ms is None else ms <= budget_ms


def _plain(value: Any) -> Any:
    if isinstance(value, Section):
        return value.to_dict()
    if isinstance(value, Status):
        return value.value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass
class Section:
    """A part of report.json: typed fields, in report.json's order, plus the keys it does not type.

    A section read from a dict (``from_dict``) writes back the keys it read (``given``, in their
    order) and any field since set to something other than its default; a section built field by
    field writes every field except the ``OPTIONAL`` ones left None. ``NESTED`` maps a field to its
    section type.
    """

    OPTIONAL: ClassVar[frozenset] = frozenset()
    NESTED: ClassVar[dict] = {}

    def to_dict(self) -> dict:
        out = {}
        given = getattr(self, "given", ())
        for f in fields(self):
            if f.name in ("extra", "given"):
                continue
            value = getattr(self, f.name)
            if f.name not in given and (_is_default(f, value) if given else value is None and f.name in self.OPTIONAL):
                continue
            out[f.name] = _plain(value)
        out.update(getattr(self, "extra", {}))
        return _in_order(out, given)

    @classmethod
    def from_dict(cls, data: dict | None):
        """The section of a report.json dict (None: None); unknown keys go to ``extra``."""
        if data is None:
            return None
        if isinstance(data, cls):
            return data
        names = {f.name for f in fields(cls)} - {"extra", "given"}
        known, extra = {}, {}
        for key, value in data.items():
            if key in names:
                known[key] = _typed(cls.NESTED.get(key), value)
            else:
                extra[key] = value
        return cls(**known, extra=extra, given=tuple(data))


def _in_order(out: dict, given: tuple) -> dict:
    """``out`` with the keys it was read with first, in their order, then anything set since."""
    return {**{k: out[k] for k in given if k in out}, **out} if given else out


def _is_default(f, value) -> bool:
    default = f.default_factory() if f.default_factory is not MISSING else f.default
    return value is None or (default is not MISSING and value == default)


def _typed(kind, value):
    if kind is None or value is None:
        return value
    if isinstance(kind, list):  # a list of sections
        return [kind[0].from_dict(v) for v in value]
    if kind is Status:
        return Status(value)
    return kind.from_dict(value)


def _extra():
    return field(default_factory=dict, repr=False)


def _given():
    return field(default=(), repr=False, compare=False)


@dataclass
class TargetSection(Section):
    name: str | None = None
    backend: str | None = None
    device: str | None = None
    format: dict = field(default_factory=dict)
    source: str | None = None
    extra: dict = _extra()
    given: tuple = _given()


@dataclass
class DatasetSection(Section):
    """``labels``: "teacher" when an unlabeled folder was labelled by the teacher (accuracy is then
    agreement with it); absent for labelled data."""

    OPTIONAL = frozenset({"labels"})
    name: str | None = None
    train: int | None = None
    val: int | None = None
    input_shape: list = field(default_factory=list)
    classes: list = field(default_factory=list)
    labels: str | None = None
    extra: dict = _extra()
    given: tuple = _given()


@dataclass
class ModelSection(Section):
    """The teacher or the fp32 student in torch: what it is, and its accuracy on the validation data."""

    OPTIONAL = frozenset({"source", "trained_now", "agreement_teacher", "kl_teacher", "cosine_teacher",
                          "per_class_accuracy", "latency_ms"})
    arch: Any = None
    source: str | None = None
    trained_now: bool | None = None
    params: int | None = None
    accuracy: float | None = None
    agreement_teacher: float | None = None
    kl_teacher: float | None = None
    cosine_teacher: float | None = None
    per_class_accuracy: list | None = None
    latency_ms: dict | None = None  # torch eager batch-1 timing: {"p50", "p90", ...}
    extra: dict = _extra()
    given: tuple = _given()


@dataclass
class Prediction(Section):
    """The target's latency model applied to the student; written into the ``artifact`` section."""

    OPTIONAL = frozenset({"flops_proxy_mmac"})
    latency_predicted_ms: float | None = None
    latency_model: dict = field(default_factory=dict)  # kind, source, warnings, error_vs_measured_pct, reason
    flops_proxy_mmac: float | None = None
    extra: dict = _extra()
    given: tuple = _given()


PREDICTION_KEYS = ("latency_predicted_ms", "latency_model", "flops_proxy_mmac")


@dataclass
class ArtifactSection(Section):
    """The compiled artifact: its files, and its measurements in its runtime when it ran here."""

    OPTIONAL = frozenset({"accuracy", "agreement_teacher", "kl_teacher", "cosine_teacher", "per_class_accuracy",
                          "agreement_student", "max_abs_diff_student", "emulated", "validation_seconds",
                          "latency_ms", "validated", "reference_check"})
    path: str | None = None
    backend: str | None = None
    precision: str | None = None
    size_bytes: int | None = None
    accuracy: float | None = None  # None: not run here
    agreement_teacher: float | None = None
    kl_teacher: float | None = None
    cosine_teacher: float | None = None
    per_class_accuracy: list | None = None
    agreement_student: float | None = None
    max_abs_diff_student: float | None = None
    emulated: bool | None = None
    validation_seconds: float | None = None
    latency_ms: dict | None = None  # measured batch-1 timing in its runtime
    files: dict = field(default_factory=dict)
    sha256: Any = None
    static_batch: int | None = None
    details: dict = field(default_factory=dict)
    latency_budget_ms: float | None = None
    within_budget: bool | None = None  # judged on the measured p50 only
    validated: bool | None = None  # False on a not-run report; absent when it ran
    reference_check: dict | None = None  # the same graph in a reference runtime, where the device is absent
    prediction: Prediction | None = None
    extra: dict = _extra()
    given: tuple = _given()

    def to_dict(self) -> dict:
        out = super().to_dict()
        prediction = out.pop("prediction", None)
        if prediction is not None:
            out.update(prediction)
        return _in_order(out, self.given)

    @classmethod
    def from_dict(cls, data: dict | None):
        if data is None or isinstance(data, cls):
            return data
        order, data = tuple(data), dict(data)
        predicted = {k: data.pop(k) for k in PREDICTION_KEYS if k in data}
        section = super().from_dict(data)
        section.given = tuple(k for k in order if k in section.given or k in predicted)
        if "latency_model" in predicted:
            section.prediction = Prediction.from_dict(predicted)
        else:
            section.extra.update(predicted)
        return section

    @property
    def ran(self) -> bool:
        """Whether the artifact ran here in its runtime (it has an accuracy of its own)."""
        return self.accuracy is not None


@dataclass
class GateSection(Section):
    """The target's gate. ``passed`` is None and ``status`` NOT_RUN when the artifact could not run here."""

    OPTIONAL = frozenset({"accuracy_drop_points"})
    passed: bool | None = None
    status: Status | None = None  # written only when it says more than ``passed`` (not run here)
    accuracy_drop_points: float | None = None
    max_accuracy_drop: float | None = None
    min_agreement: float | None = None
    reasons: list = field(default_factory=list)
    extra: dict = _extra()
    given: tuple = _given()
    NESTED = {"status": Status}

    def __post_init__(self):
        if self.status is None and self.passed is not None:
            self.status = Status.PASSED if self.passed else Status.FAILED

    @classmethod
    def not_run(cls, reason: str, max_accuracy_drop: float, min_agreement: float | None) -> "GateSection":
        """The gate of an artifact that could not run here: undecided, never passed."""
        return cls.from_dict({"passed": None, "status": Status.NOT_RUN, "reasons": [reason],
                              "max_accuracy_drop": max_accuracy_drop, "min_agreement": min_agreement})

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.status in (Status.PASSED, Status.FAILED, None) and "status" not in self.given:
            out.pop("status")  # ``passed`` says it
        return out


@dataclass
class DistillationSection(Section):
    OPTIONAL = frozenset({"qat"})
    loss: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    resumed_from_epoch: int | None = None
    qat: dict | None = None  # the numeric format, layers and who taught QAT; None without QAT
    extra: dict = _extra()
    given: tuple = _given()
