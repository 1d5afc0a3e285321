"""The honest baseline of every build: the teacher itself compiled for the target and validated like the student.

A student only earns its place if its artifact beats this one in the same runtime (same backend,
numeric format, calibration recipe). The teacher artifact lands in ``out_dir/teacher/<target>/`` so
the student's ``out_dir/<target>/`` keeps its documented layout.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from edgekd.backends.base import Artifact
from edgekd.errors import ConfigError, DataError, MissingExtraError, NotRunHere

log = logging.getLogger(__name__)

TEACHER_FOLDER = "teacher"
RUN, NOT_RUN, NOT_BUILT, ERROR = "run here", "not run here", "not built here", "error"
SHIP_CHOICES = ("auto", "student", "teacher")


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
    from edgekd.capability import capability
    from edgekd.compile import compile as compile_model

    started = time.perf_counter()
    cap = capability(target)
    base = {"target": target.name, "backend": target.backend, "params": sum(p.numel() for p in teacher.parameters()),
            "latency_budget_ms": target.latency.budget_ms}
    if not cap.build:
        return TeacherArtifact({**base, "status": NOT_BUILT, "reason": f"not built here: {cap.build_reason}"})
    try:
        artifact = compile_model(copy.deepcopy(teacher).eval(), target, data.train, Path(out_dir) / TEACHER_FOLDER,
                                 spec=data.spec, calib_size=calib_size)
        if getattr(target.gate, "speed_gate", False) and cap.latency_here:  # the student's rule, applied alike
            from edgekd.validate.speed import speed_gate

            artifact = speed_gate(artifact, target)[0]
    except (ConfigError, DataError):
        raise  # bad input (e.g. too few calibration samples) fails the build, as it would for the student
    except (MissingExtraError, NotRunHere, ImportError) as exc:
        return TeacherArtifact({**base, "status": NOT_BUILT, "reason": f"not built here: {exc}"})
    except Exception as exc:  # noqa: BLE001 - the baseline must never stop the build
        log.warning("%s: compiling the teacher failed: %s", target.name, exc)
        return TeacherArtifact({**base, "status": ERROR, "reason": f"compile failed: {type(exc).__name__}: {exc}"})
    record = {**base, "path": str(Path(TEACHER_FOLDER) / target.name / Path(artifact.path).name),
              "precision": artifact.precision, "size_bytes": artifact.size_bytes,
              "calibration": artifact.details.get("calibration")}
    try:
        record.update(_validate(artifact, teacher, target, data, cap, latency_runs))
    except Exception as exc:  # noqa: BLE001
        log.warning("%s: validating the teacher artifact failed: %s", target.name, exc)
        record.update(status=ERROR, reason=f"validation failed: {type(exc).__name__}: {exc}")
    record["seconds"] = time.perf_counter() - started
    return TeacherArtifact(record, artifact)


def _validate(artifact: Artifact, teacher, target, data, cap, latency_runs: int) -> dict:
    from edgekd.validate import evaluate_gate, validate

    if not cap.run:
        return {"status": NOT_RUN, "reason": f"not run here: {cap.run_reason}", "accuracy": None,
                **_latency(artifact, None, cap)}
    validation = validate(artifact, teacher, data.val, None, threads=target.latency.threads,
                          latency_runs=latency_runs, measure_latency=cap.latency_here)
    art = validation["artifact"]
    if art.get("not_run"):
        return {"status": NOT_RUN, "reason": art["not_run"], "accuracy": None, **_latency(artifact, None, cap)}
    gate = evaluate_gate(target, validation)
    within = None
    lat = _latency(artifact, art.get("latency_ms"), cap)
    if target.latency.budget_ms is not None and lat["latency_p50_ms"] is not None:
        within = lat["latency_p50_ms"] <= target.latency.budget_ms
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


def comparison(report: dict, teacher_artifact: dict, student_latency: dict | None) -> dict:
    """Student artifact vs teacher artifact in the same runtime (the headline) and vs the torch-eager teacher.

    ``student_latency``: the student artifact's latency record (``kind``, ``ms``) as the report holds it.
    """
    art, teacher = report["artifact"], report["teacher"]
    s_ms = (student_latency or {}).get("ms")
    s_kind = (student_latency or {}).get("kind")
    t_ms, t_kind = teacher_artifact.get("latency_p50_ms"), teacher_artifact.get("latency_kind")
    same_basis = s_ms is not None and t_ms is not None and s_kind == t_kind and s_kind in ("measured", "predicted")
    torch_t = (teacher.get("latency_ms") or {}).get("p50")
    s_acc, t_acc = art.get("accuracy"), teacher_artifact.get("accuracy")
    t_size, s_size = teacher_artifact.get("size_bytes"), art.get("size_bytes")
    out = {
        "speedup_vs_compiled_teacher": t_ms / s_ms if same_basis and s_ms > 0 else None,
        "speedup_basis": s_kind if same_basis else None,
        "speedup_vs_teacher_torch_eager": torch_t / s_ms if torch_t and s_ms and s_kind == "measured" else None,
        "accuracy_delta_points": (s_acc - t_acc) * 100.0 if s_acc is not None and t_acc is not None else None,
        "size_ratio": t_size / s_size if t_size and s_size else None,
        "params_ratio": (teacher.get("params") or 0) / report["student"]["params"]
        if report["student"].get("params") else None,
        "student_faster": (s_ms < t_ms) if same_basis else None,
        "student_smaller": report["student"].get("params", 0) < (teacher.get("params") or 0),
    }
    out["teacher_fits"] = teacher_fits(teacher_artifact)
    return out


def teacher_fits(teacher_artifact: dict) -> bool | None:
    """Whether the compiled teacher alone meets the latency budget and the accuracy gate (None: unknown here)."""
    within, gate = teacher_artifact.get("within_budget"), teacher_artifact.get("passes_accuracy_gate")
    if teacher_artifact.get("latency_budget_ms") is None and gate is not None:
        within = True  # no budget: only the gate decides
    if within is None or gate is None:
        return None
    return bool(within and gate)


def choose_ship(requested: str, versus: dict, teacher_artifact: dict) -> dict:
    """Which artifact ships: ``auto`` takes the student only when it is faster in the runtime."""
    if requested not in SHIP_CHOICES:
        raise ConfigError(f"ship must be one of {', '.join(SHIP_CHOICES)}, got {requested!r}")
    teacher_ok = teacher_artifact.get("path") is not None and teacher_artifact.get("status") != ERROR
    if requested == "teacher" and not teacher_ok:
        return {"requested": requested, "choice": "student", "reason": "teacher requested but its artifact "
                f"was not built: {teacher_artifact.get('reason')}"}
    if requested != "auto":
        return {"requested": requested, "choice": requested, "reason": f"{requested} requested"}
    faster = versus.get("student_faster")
    if faster is None or not teacher_ok:
        return {"requested": "auto", "choice": "student", "reason": "no same-runtime latency of both artifacts "
                "here: the student ships by default"}
    if faster:
        return {"requested": "auto", "choice": "student", "reason": f"the student artifact is "
                f"{versus['speedup_vs_compiled_teacher']:.2f}x faster than the compiled teacher"}
    return {"requested": "auto", "choice": "teacher", "reason": "the student artifact is not faster than the "
            "teacher compiled for the same runtime"}


def attach_baseline(report: dict, teacher_artifact: dict, student_latency: dict | None, ship: str = "auto") -> None:
    """Add ``teacher_artifact``, ``versus_teacher`` and ``ship`` to a target's report."""
    report["teacher_artifact"] = teacher_artifact
    versus = comparison(report, teacher_artifact, student_latency)
    report["versus_teacher"] = versus
    choice = choose_ship(ship, versus, teacher_artifact)
    choice["artifact"] = (teacher_artifact["path"] if choice["choice"] == "teacher"
                          else f"{report['target']['name']}/{report['artifact']['path']}")
    report["ship"] = choice
