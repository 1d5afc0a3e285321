"""The one builder of report.json: :func:`assemble` takes a build's pieces and returns a typed :class:`Report`.

Every path builds its report here: a validated artifact, an artifact built but not run here, a
single-target build and a matrix build. The section functions are pure (they return sections and
never change their inputs), so a stage computes a section and hands it to :func:`assemble`
instead of patching a dict afterwards.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass, replace
from pathlib import Path

from edgekd.capability import latency_section
from edgekd.chance import log_chance_warnings, near_chance_warnings
from edgekd.hw.environment import environment
from edgekd.hw.model import report_prediction
from edgekd.report.versus import baseline_sections
from edgekd.schema.record import (ChanceWarning, LatencyRecord, Report, RunSection, SearchSection, ShipSection,
                                  TeacherArtifactSection, VersusSection)
from edgekd.schema.sections import (ArtifactSection, DatasetSection, DistillationSection, GateSection, ModelSection,
                                    Prediction, Status, TargetSection, within_budget)
from edgekd.schema.student import card_of
from edgekd.validate.records import NOT_RUN_METRICS, judged_check


def target_section(target) -> TargetSection:
    return TargetSection(name=target.name, backend=target.backend, device=target.device,
                         format=target.format.model_dump(), source=target.source_path)


def dataset_section(data) -> DatasetSection:
    return DatasetSection(name=data.name, train=len(data.train), val=len(data.val),
                          input_shape=list(data.train.input_shape), classes=list(data.spec.labels),
                          labels="teacher" if getattr(data, "labels_from", "labels") == "teacher" else None)


def teacher_section(teacher_info: dict, metrics: dict) -> ModelSection:
    """The teacher: what it is (``teacher_info``) and its torch accuracy (and latency) on the validation data."""
    return ModelSection.from_dict({**teacher_info, **metrics})


def student_section(student, metrics: dict) -> ModelSection:
    """The fp32 student in torch: its architecture, parameter count and comparison with the teacher."""
    return ModelSection.from_dict({"arch": card_of(student).arch,
                                   "params": sum(p.numel() for p in student.parameters()), **metrics})


def artifact_section(artifact, target, measured: dict | None = None, *, reference_check: dict | None = None,
                     prediction: Prediction | dict | None = None) -> ArtifactSection:
    """The artifact's files and, when it ran here (``measured``: validate's ``artifact`` record), its figures.

    Without figures (``measured`` None or a not-run record) it is marked ``validated: False``;
    ``reference_check`` is then judged against the target's accuracy gate.
    """
    ran = bool(measured) and measured.get("accuracy") is not None
    record = {"path": str(artifact.path), "backend": artifact.backend, "precision": artifact.precision,
              "size_bytes": artifact.size_bytes}
    if measured:  # a not-run record's empty figures are dropped: the artifact has none
        record.update({k: v for k, v in measured.items() if ran or k not in NOT_RUN_METRICS or v is not None})
    budget = target.latency.budget_ms
    measured_ms = (record.get("latency_ms") or {}).get("p50") if ran else None
    record.update(path=Path(artifact.path).name, files=artifact.files, sha256=artifact.sha256,
                  static_batch=artifact.static_batch, details=artifact.details, latency_budget_ms=budget,
                  within_budget=within_budget(measured_ms, budget))
    if not ran:
        record["validated"] = False
        check = reference_check or record.pop("reference_check", None)
        if check is not None:
            record["reference_check"] = judged_check(check, target.gate.max_accuracy_drop)
    section = ArtifactSection.from_dict(record)
    section.prediction = Prediction.from_dict(prediction)
    return section


def not_run_gate(target, reason: str) -> GateSection:
    """The gate of an artifact that could not run here: undecided, never passed."""
    return GateSection.not_run(reason, target.gate.max_accuracy_drop, target.gate.min_agreement)


def gate_section(gate: GateSection | dict) -> GateSection:
    return GateSection.from_dict(gate)


def distillation_section(loss, config, history: list, resumed_from_epoch, qat: dict | None) -> DistillationSection:
    return DistillationSection.from_dict({"loss": {"name": type(loss).__name__, **loss.config()},
                                         "config": asdict(config) if is_dataclass(config) else dict(config),
                                         "history": history, "resumed_from_epoch": resumed_from_epoch, "qat": qat})


def prediction_section(report: Report, target) -> Prediction:
    """The target's latency model on ``report``'s student, beside its measured p50 when there is one."""
    return Prediction.from_dict(report_prediction(report, target))


def with_prediction(report: Report, prediction: Prediction) -> Report:
    """A copy of ``report`` whose artifact section carries ``prediction``."""
    return replace(report, artifact=replace(report.artifact, prediction=prediction))


def run_section(status: Status | str, reason: str, capability, latency: LatencyRecord | dict,
                seconds: dict, shared_distillation: str | None = None) -> RunSection:
    """A ``build_all`` target's run record: status, why, what this machine can do, its latency record."""
    cap = asdict(capability) if is_dataclass(capability) else dict(capability)
    return RunSection(status=Status(status), reason=reason, capability=cap, shared_distillation=shared_distillation,
                      latency=LatencyRecord.from_dict(latency), seconds=dict(seconds))


def chance_section(report: Report) -> list[ChanceWarning]:
    """The near-chance warnings of ``report``'s teacher and fp32 student (:mod:`edgekd.chance`)."""
    classes = len(report.dataset.classes) or len(report.teacher.per_class_accuracy or [])
    epochs = {"student": report.distillation.config.get("epochs"),
              "teacher": (report.teacher.extra.get("recipe") or {}).get("epochs")}  # edgekd's default teacher only
    found = near_chance_warnings(classes, report.dataset.train or 0,
                                 {"teacher": report.teacher.accuracy, "student": report.student.accuracy}, epochs)
    return [ChanceWarning.from_dict(w) for w in found]


def validation_pieces(validation: dict, teacher_per_class: list | None = None) -> dict:
    """``validate()``'s result as :func:`assemble`'s keyword arguments (teacher, student and artifact figures);
    ``teacher_per_class``: the teacher's per-class accuracy where the validation has none."""
    artifact, teacher = validation["artifact"], dict(validation["teacher"])
    if teacher_per_class is not None:
        teacher.setdefault("per_class_accuracy", teacher_per_class)
    return {"teacher_metrics": teacher, "student_metrics": validation.get("student") or {},
            "measured": artifact, "not_run": artifact.get("not_run")}


def assemble(*, target, data, teacher_info: dict, teacher_metrics: dict, student, student_metrics: dict,
             artifact, measured: dict | None = None, not_run: str | None = None,
             reference_check: dict | None = None, gate: GateSection | dict | None = None, loss, config,
             history: list, resumed_from_epoch=None, seconds: float | None = None, search: dict | None = None,
             prediction: Prediction | dict | None = None, run: RunSection | None = None,
             baseline: tuple[TeacherArtifactSection, VersusSection, ShipSection] | None = None,
             warnings: list[ChanceWarning] | None = None, environment_facts: dict | None = None) -> Report:
    """One target's report from its pieces; the same record on every path.

    Args:
        teacher_info, teacher_metrics: what the teacher is; its torch accuracy (latency, per-class accuracy).
        student, student_metrics: the distilled fp32 model and its comparison with the teacher.
        artifact, measured: the compiled artifact and ``validate()``'s ``artifact`` record when it ran.
        not_run: why the artifact did not run here (its gate is then undecided: ``passed`` None,
            status NOT_RUN); ``reference_check`` its figures in a reference runtime.
        gate: the target's gate on a validated artifact (``validate.evaluate_gate``).
        prediction: the target's latency model on the student (``hw.model.student_prediction``).
        run: a ``build_all`` target's :func:`run_section`.
        baseline: (teacher artifact, versus teacher, ship) from :func:`edgekd.report.versus.baseline_sections`.
        warnings: near-chance warnings; None computes them (:func:`chance_section`).
    """
    if not_run is None and gate is None:
        raise ValueError("assemble: a validated artifact needs its gate (or pass not_run=reason)")
    report = Report(
        target=target_section(target), dataset=dataset_section(data),
        teacher=teacher_section(teacher_info, teacher_metrics), student=student_section(student, student_metrics),
        artifact=artifact_section(artifact, target, measured, reference_check=reference_check, prediction=prediction),
        distillation=distillation_section(loss, config, history, resumed_from_epoch,
                                          card_of(student).qat),
        gate=not_run_gate(target, not_run) if not_run is not None else gate_section(gate),
        seconds=seconds, environment=environment() if environment_facts is None else environment_facts,
        search=SearchSection.from_dict(search), run=run)
    if baseline is not None:
        report.teacher_artifact, report.versus_teacher, report.ship = baseline
    report.warnings = chance_section(report) if warnings is None else list(warnings)
    return report



def finish(report: Report, *, target, capability, status: Status | str, reason: str, seconds: dict,
           shared_distillation: str | None = None, teacher_artifact: dict | None = None,
           ship: str = "auto") -> Report:
    """``report`` completed for a ``build_all`` target (a new record; ``report`` is left as it was).

    Adds the latency prediction where it has none, the run section (status, reason, ``capability``,
    the latency record: measured, predicted or none) and, given the compiled teacher's record
    (``baseline.compile_teacher(...).record``), the teacher artifact, versus-teacher and ship sections.
    """
    if report.artifact.prediction is None:
        report = with_prediction(report, prediction_section(report, target))
    latency = latency_section(report, capability, target)
    done = replace(report, run=run_section(status, reason, capability, latency, seconds, shared_distillation))
    if teacher_artifact is not None:
        done.teacher_artifact, done.versus_teacher, done.ship = baseline_sections(done, teacher_artifact, latency,
                                                                                  ship)
    return done


def log_near_chance(report: Report, models=("student",)) -> None:
    """Log ``report``'s near-chance warnings of ``models`` (the teacher's is logged once, where it is prepared)."""
    log_chance_warnings(report.target.name or "build", [w.to_dict() for w in report.near_chance], models)
