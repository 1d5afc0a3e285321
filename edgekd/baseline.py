"""The honest baseline of every build: the teacher itself compiled for the target and validated like the student.

A student only earns its place if its artifact beats this one in the same runtime (same backend,
numeric format, calibration recipe). The teacher artifact lands in ``out_dir/teacher/<target>/`` so
the student's ``out_dir/<target>/`` keeps its documented layout. Where the target has a speed gate,
the row is the faster of the teacher's int8 and fp32 builds, both timed here (the student's rule):
a student must beat the best the user gets by compiling the teacher, not its slower precision.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from edgekd.backends.base import Artifact
from edgekd.capability import capability
from edgekd.compile import compile as compile_model
from edgekd.errors import ConfigError, DataError, MissingExtraError, NotRunHere
from edgekd.schema.sections import TEACHER_RUN, Status, within_budget
from edgekd.validate import evaluate_gate, validate
from edgekd.validate.speed import faster_precision

log = logging.getLogger(__name__)

TEACHER_FOLDER = "teacher"
RUN, NOT_RUN, NOT_BUILT, ERROR = TEACHER_RUN, Status.NOT_RUN, Status.NOT_BUILT, Status.ERROR


@dataclass
class TeacherArtifact:
    """The compiled teacher of one target: ``record`` is the report's ``teacher_artifact`` section."""

    record: dict
    artifact: Artifact | None = None

    @property
    def latency_ms(self) -> float | None:
        """Its batch-1 p50 in the target's runtime, measured here or predicted (``record["latency_kind"]``)."""
        return self.record.get("latency_p50_ms")


def compile_teacher(teacher: nn.Module, target, data, out_dir: Path, *, calib_size: int | None = None,
                    latency_runs: int = 200) -> TeacherArtifact:
    """Compile ``teacher`` for ``target`` through ``edgekd.compile`` and validate it like a student; never raises."""
    started = time.perf_counter()
    cap = capability(target)
    base = {"target": target.name, "backend": target.backend, "params": sum(p.numel() for p in teacher.parameters()),
            "latency_budget_ms": target.latency.budget_ms}
    if not cap.build:
        return TeacherArtifact({**base, "status": NOT_BUILT, "reason": f"not built here: {cap.build_reason}"})
    try:
        artifact = compile_model(copy.deepcopy(teacher).eval(), target, data.train, Path(out_dir) / TEACHER_FOLDER,
                                 spec=data.spec, calib_size=calib_size)
        timed = None
        if getattr(target.gate, "speed_gate", False) and cap.latency_here:  # the student's rule, timed for the row
            artifact, timed = faster_precision(artifact, target)
    except (ConfigError, DataError):
        raise  # bad input (e.g. too few calibration samples) fails the build, as it would for the student
    except (MissingExtraError, NotRunHere, ImportError) as exc:
        return TeacherArtifact({**base, "status": NOT_BUILT, "reason": f"not built here: {exc}"})
    except Exception as exc:  # noqa: BLE001 - the baseline must never stop the build
        log.warning("%s: compiling the teacher failed: %s", target.name, exc)
        return TeacherArtifact({**base, "status": ERROR, "reason": f"compile failed: {type(exc).__name__}: {exc}"})
    record = {**base, "path": str(Path(TEACHER_FOLDER) / target.name / Path(artifact.path).name),
              "precision": artifact.precision, "size_bytes": artifact.size_bytes,
              "calibration": artifact.details.get("calibration"), **({"speed_gate": timed} if timed else {})}
    try:
        record.update(_validate(artifact, teacher, target, data, cap, latency_runs))
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: validating the teacher artifact failed: %s", target.name, exc)
        record.update(status=ERROR, reason=f"validation failed: {type(exc).__name__}: {exc}")
    record["seconds"] = time.perf_counter() - started
    return TeacherArtifact(record, artifact)


def _validate(artifact: Artifact, teacher, target, data, cap, latency_runs: int) -> dict:
    if not cap.run:
        return {"status": NOT_RUN, "reason": f"not run here: {cap.run_reason}", "accuracy": None,
                **_latency(artifact, None, cap)}
    validation = validate(artifact, teacher, data.val, None, threads=target.latency.threads,
                          latency_runs=latency_runs, measure_latency=cap.latency_here)
    art = validation["artifact"]
    if art.get("not_run"):
        return {"status": NOT_RUN, "reason": art["not_run"], "accuracy": None, **_latency(artifact, None, cap)}
    gate = evaluate_gate(target, validation)
    lat = _latency(artifact, art.get("latency_ms"), cap)
    within = within_budget(lat["latency_p50_ms"], target.latency.budget_ms)
    return {"status": RUN, "reason": "", "accuracy": art["accuracy"], "agreement_teacher": art["agreement_teacher"],
            "kl_teacher": art.get("kl_teacher"), "teacher_torch_accuracy": validation["teacher"]["accuracy"],
            "accuracy_drop_points": gate["accuracy_drop_points"], "passes_accuracy_gate": gate["passed"],
            "within_budget": within, "per_class_accuracy": art.get("per_class_accuracy"), **lat,
            "torch_latency_ms": validation["teacher"].get("latency_ms")}


def _latency(artifact: Artifact, measured: dict | None, cap) -> dict:
    """Measured here where this machine is the device, else the compiler's own estimate of this artifact."""
    if measured and cap.latency_here:
        return {"latency_ms": measured, "latency_p50_ms": measured["p50"], "latency_kind": "measured",
                "latency_how": f"measured here in {measured.get('runtime', artifact.backend)}, batch 1"}
    estimate = (artifact.details or {}).get("predicted_latency_ms") or {}
    if estimate.get("ms") is not None and estimate["ms"] == estimate["ms"]:
        return {"latency_ms": None, "latency_p50_ms": float(estimate["ms"]), "latency_kind": "predicted",
                "latency_how": f"predicted: {estimate.get('source', 'compiler estimate')} of this artifact"}
    # the target's latency model predicts registry architectures only; a user teacher is none
    return {"latency_ms": None, "latency_p50_ms": None, "latency_kind": "none",
            "latency_how": cap.latency_reason or "not measured on the device"}
