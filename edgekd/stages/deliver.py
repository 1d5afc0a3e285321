"""Stage 5, per target: compile the distilled student, validate it in its runtime (or say why not), report it
beside the compiled teacher. Each target's reports are written once, at the end."""

from __future__ import annotations

import copy
import logging
import time
import traceback
from dataclasses import replace

from edgekd.backends.base import Artifact
from edgekd.baseline import TeacherArtifact
from edgekd.capability import Capability, capability
from edgekd.compile import compile as compile_model
from edgekd.errors import MissingExtraError, NotRunHere
from edgekd.report.builder import assemble, finish, log_near_chance, validation_pieces
from edgekd.report.manifest import not_run_pieces, write_target_reports
from edgekd.schema.record import Report
from edgekd.schema.sections import GateSection, Status
from edgekd.schema.student import card_of, set_card
from edgekd.stages.context import BuildContext
from edgekd.stages.results import TargetResult
from edgekd.targets import Target
from edgekd.validate import gate_of, validate
from edgekd.validate.sensitivity import can_recover, recover_accuracy
from edgekd.validate.speed import speed_gate

log = logging.getLogger(__name__)


def for_target(trained, search: dict | None):
    """A copy of the distilled model for one target (a backend or the accuracy recovery may change the
    model it is given), carrying that target's own search summary."""
    model = copy.deepcopy(trained.model)
    if search is not None:
        set_card(model, search=search)
    return replace(trained, model=model)


def deliver_target(target: Target, trained, config, ctx: BuildContext, label: str = "",
                   shared_seconds: dict | None = None) -> TargetResult:
    """Compile, validate where possible, and report one target; a target-level failure becomes its status
    (or is raised when ``ctx.raise_errors``)."""
    cap = capability(target)
    if not cap.build:
        return TargetResult(target.name, Status.NOT_BUILT, f"not built here: {cap.build_reason}")
    started = time.perf_counter()
    o = ctx.options
    try:
        artifact = compile_model(trained.model, target, ctx.data.train, ctx.out_dir, spec=ctx.data.spec,
                                 calib_size=o.calib_size)
    except (MissingExtraError, NotRunHere, ImportError) as exc:
        if ctx.raise_errors:
            raise
        return TargetResult(target.name, Status.NOT_BUILT, f"not built here: {exc}", error=exc)
    except Exception as exc:  # noqa: BLE001 - one target's failure must not stop the others
        return _error(target, "compile", exc, ctx)
    if target.gate.speed_gate and cap.latency_here:  # ship fp32 when int8 is not faster on this device
        try:
            artifact = speed_gate(artifact, target, arch=card_of(trained.model).arch,
                                  num_classes=ctx.data.num_classes)[0]
        except Exception as exc:  # noqa: BLE001
            return _error(target, "speed gate", exc, ctx, artifact)
    try:
        status, reason, report, artifact = _validate_or_explain(artifact, target, trained, config, ctx, cap, started)
        if status == Status.NOT_RUN and cap.run:  # the backend runs here but not this target's device
            cap = replace(cap, run=False, run_reason=reason, latency_here=False,
                          latency_reason=f"not measured on the device ({reason})")
        # report.seconds is this target's own compile + validation; shared stages are timed once per group
        seconds = {"compile_and_validate": report.seconds,
                   **{f"shared_{k}": v for k, v in (shared_seconds or {}).items() if v is not None}}
        baseline = ctx.baselines.get(target.name) or TeacherArtifact({"status": Status.NOT_BUILT,
                                                                      "reason": "not compiled"})
        report = finish(report, target=target, capability=cap, status=status, reason=reason, seconds=seconds,
                        shared_distillation=label, teacher_artifact=baseline.record, ship=o.ship)
        log_near_chance(report)
        write_target_reports(report, artifact.folder)
    except Exception as exc:  # noqa: BLE001
        return _error(target, "validation", exc, ctx, artifact)
    # results keep report.json's dict for users; readers type it with Report.from_dict
    return TargetResult(target.name, status, reason, report.to_dict(), artifact, baseline.artifact,
                        student=trained.model, history=trained.history)


def _validate_or_explain(artifact: Artifact, target: Target, trained, config, ctx: BuildContext, cap: Capability,
                         started: float) -> tuple[Status, str, Report, Artifact]:
    """(status, reason, report, artifact): run the artifact here if its runtime is here, else say why not."""
    if cap.run:
        try:
            report, gate, artifact = validate_target(artifact, target, trained, config, ctx, cap.latency_here,
                                                     started)
            return gate.status, "; ".join(gate.reasons), report, artifact
        except NotRunHere as exc:  # the backend runs here, but not on this target's device (e.g. an NPU)
            why = str(exc)
    else:
        why = cap.run_reason
    reason = f"{Status.NOT_RUN}: {why.removeprefix(f'{Status.NOT_RUN}: ')}"  # the prefix once, whoever wrote it
    report = assemble(target=target, data=ctx.data, teacher_info=ctx.teacher_info, student=trained.model,
                      artifact=artifact, not_run=reason, loss=ctx.loss, config=config, history=trained.history,
                      resumed_from_epoch=trained.resumed_from_epoch, seconds=time.perf_counter() - started,
                      search=card_of(trained.model).search,
                      **not_run_pieces(target=target, artifact=artifact, data=ctx.data,
                                       teacher_logits=ctx.teacher_view["logits"], student=trained.model))
    return Status.NOT_RUN, reason, report, artifact


def validate_target(artifact: Artifact, target: Target, trained, config, ctx: BuildContext, measure_latency: bool,
                    started: float) -> tuple[Report, GateSection, Artifact]:
    """(the report, its gate, the artifact): the artifact validated in its runtime against the teacher;
    where the gate fails and sensitive layers can stay float, rebuilt that way and validated again."""
    model, o = trained.model, ctx.options
    threads = target.latency.threads
    validation = validate(artifact, ctx.teacher, ctx.data.val, model, threads=threads, latency_runs=o.latency_runs,
                          measure_latency=measure_latency)
    gate = gate_of(target, validation)
    if gate.status is Status.FAILED and can_recover(artifact, target, validation):
        artifact = recover_accuracy(model, target, ctx.data.train, ctx.data.val, ctx.teacher, artifact.folder.parent,
                                    artifact, gate.to_dict(), spec=ctx.data.spec)[0]
        validation = validate(artifact, ctx.teacher, ctx.data.val, model, threads=threads,
                              latency_runs=o.latency_runs, measure_latency=measure_latency)
        gate = gate_of(target, validation)
    report = assemble(target=target, data=ctx.data, teacher_info=ctx.teacher_info, student=model, artifact=artifact,
                      gate=gate, loss=ctx.loss, config=config, history=trained.history,
                      resumed_from_epoch=trained.resumed_from_epoch, seconds=time.perf_counter() - started,
                      search=card_of(model).search,
                      **validation_pieces(validation, ctx.teacher_view["per_class_accuracy"]))
    return report, gate, artifact


def _error(target: Target, stage: str, exc: Exception, ctx: BuildContext,
           artifact: Artifact | None = None) -> TargetResult:
    if ctx.raise_errors:
        raise exc
    log.error("%s: %s failed: %s", target.name, stage, exc)
    log.debug("%s", traceback.format_exc())
    return TargetResult(target.name, Status.ERROR, f"{stage} failed: {type(exc).__name__}: {exc}", None, artifact,
                        error=exc)
