"""Validation: run the artifact in its own runtime and compare it with the teacher."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from edgekd._verbs import make_callable
from edgekd.backends.base import Artifact, get_backend
from edgekd.data.sources import as_array_data
from edgekd.distill.trainer import predict
from edgekd.errors import NotRunHere
from edgekd.targets import load_target
from edgekd.validate.gates import GateVerdict, evaluate_gate, gate_of
from edgekd.validate.latency import runner_latency, torch_latency
from edgekd.validate.metrics import accuracy, compare
from edgekd.validate.progress import run_with_progress
from edgekd.validate.records import judged_check, not_run_measurements

__all__ = ["EMULATED_VALIDATE_SAMPLES", "GateVerdict", "evaluate_gate", "gate_of", "reference_check", "validate"]
log = logging.getLogger(__name__)


def validate(artifact: Artifact | str, teacher: torch.nn.Module, val, student: torch.nn.Module | None = None,
             *, threads: int = 1, latency_runs: int = 200, measure_latency: bool = True, target=None,
             validate_samples: int | None = None, progress: bool | None = None) -> dict:
    """Run ``artifact`` in its runtime on ``val`` and compare it with ``teacher`` (and ``student``).

    Returns a dict with ``teacher``, ``student`` (when given) and ``artifact`` sections holding
    accuracy, top-1 agreement, mean KL and cosine to the teacher, and batch-1 latency, and ``gate``:
    the target's gate applied (:class:`GateVerdict` as a dict; ``None`` when the artifact's target
    cannot be loaded and none is passed as ``target``).

    ``validate_samples`` caps how many validation samples run (a seeded random subset); an emulated
    runtime (QNN HTP on x86) is capped at :data:`EMULATED_VALIDATE_SAMPLES` unless told otherwise
    (0: no cap). The gate then reports the Wilson 95 % interval the smaller sample implies, and
    ``samples_available``. ``progress`` shows a tqdm bar (default: on for emulated runtimes).
    """
    if not isinstance(artifact, Artifact):
        artifact = Artifact.read(artifact)
    data = as_array_data(val, "val")
    backend = get_backend(artifact.backend)
    emulated = backend.emulated
    available = len(data)
    data = _capped(data, validate_samples, emulated, artifact)
    x, y = data.numpy()
    try:
        runner = backend.load(artifact, threads=threads)
    except NotRunHere as exc:  # the artifact exists, its runtime or device does not: say so, never "passed"
        report = _not_run(artifact, teacher, data, student, str(exc))
        return _with_gate(report, artifact, target, available)
    teacher_logits = predict(teacher, data.x).numpy()
    student_logits = predict(student, data.x).numpy() if student is not None else None

    started = time.perf_counter()
    artifact_logits = np.asarray(run_with_progress(runner, x, emulated if progress is None else progress,
                                                   f"{artifact.target}: validating"), dtype=np.float32)
    seconds = time.perf_counter() - started

    report: dict = {"samples": len(y), "teacher": {"accuracy": accuracy(teacher_logits, y)}}
    if student_logits is not None:
        report["student"] = compare(student_logits, y, teacher_logits, None)
    report["artifact"] = {"path": str(artifact.path), "backend": artifact.backend, "precision": artifact.precision,
                          "size_bytes": artifact.size_bytes,
                          **compare(artifact_logits, y, teacher_logits, student_logits),
                          "emulated": emulated, "validation_seconds": seconds}
    if measure_latency:
        one = x[:1]
        report["teacher"]["latency_ms"] = torch_latency(teacher, one, threads, latency_runs)
        if student is not None:
            report["student"]["latency_ms"] = torch_latency(student, one, threads, latency_runs)
        report["artifact"]["latency_ms"] = runner_latency(runner, one, threads, latency_runs)
    return _with_gate(report, artifact, target, available)


EMULATED_VALIDATE_SAMPLES = 200  # an emulated HTP runs ~4 s per 224×224 image here: 200 take ~15 min
"""Default cap on validation samples for emulated runtimes. At 200 samples and ~95 % agreement the
Wilson 95 % interval is about ±3 points; the gate reports the interval it used."""


def _capped(data, validate_samples: int | None, emulated: bool, artifact: Artifact):
    cap = validate_samples if validate_samples is not None else (EMULATED_VALIDATE_SAMPLES if emulated else 0)
    if cap < 0:
        raise ValueError(f"validate_samples must be >= 0 (0: no cap), got {cap}")
    if not cap or len(data) <= cap:
        return data
    log.info("%s: validating %d of %d samples%s (validate_samples)", artifact.target, cap, len(data),
             " in an emulator" if emulated else "")
    index = np.sort(np.random.default_rng(0).permutation(len(data))[:cap])
    return data.subset(index)


def _with_gate(report: dict, artifact: Artifact, target, available: int) -> dict:
    """Add ``samples_available`` and the target's gate verdict to a validation report (a not-run
    artifact's reference check is judged against the target's accuracy gate)."""
    report["samples_available"] = available
    if target is None:
        try:
            target = load_target(artifact.target)
        except Exception:  # noqa: BLE001 - a renamed or absent target TOML: no gate, said by gate=None
            report["gate"] = None
            return report
    target = load_target(target)
    check = report["artifact"].get("reference_check")
    if check is not None:
        report["artifact"]["reference_check"] = judged_check(check, target.gate.max_accuracy_drop)
    report["gate"] = GateVerdict.from_validation(target, report).to_json()
    return report


def _not_run(artifact: Artifact, teacher, data, student, reason: str) -> dict:
    """Teacher (and fp32 student) measured; the artifact recorded with why it did not run here."""
    x, y = data.numpy()
    teacher_logits = predict(teacher, data.x).numpy()
    student_logits = predict(student, data.x).numpy() if student is not None else None
    report: dict = {"samples": len(y), "teacher": {"accuracy": accuracy(teacher_logits, y)}}
    if student_logits is not None:
        report["student"] = compare(student_logits, y, teacher_logits, None)
    report["artifact"] = not_run_measurements(artifact, reason)
    check = reference_check(artifact, x, y, teacher_logits, student_logits)
    if check is not None:
        report["artifact"]["reference_check"] = check
    return report


def reference_check(artifact: Artifact, x: np.ndarray, y: np.ndarray, teacher_logits: np.ndarray,
                    student_logits: np.ndarray | None = None, max_accuracy_drop: float | None = None) -> dict | None:
    """Where the device is absent but the backend can run the same quantized graph in a reference
    runtime here (``backend.reference``), its accuracy and agreement, labelled as not the device's."""
    backend = get_backend(artifact.backend)
    if not backend.has_reference:
        return None
    try:
        reference = backend.reference(artifact)
        if reference is None:  # nothing to check in a reference runtime (e.g. an fp16 engine's fp32 ONNX)
            return None
        runner, label = reference
        logits = np.asarray(runner(x), np.float32)
    except Exception as exc:  # noqa: BLE001 - an extra check: its failure is logged, the build goes on
        log.warning("%s: reference check not run: %s", artifact.target, exc)
        return None
    check = {"runtime": label, "samples": len(y), **compare(logits, y, teacher_logits, student_logits)}
    check["accuracy_drop_points"] = (accuracy(teacher_logits, y) - check["accuracy"]) * 100.0
    if max_accuracy_drop is not None:
        check["within_accuracy_gate"] = check["accuracy_drop_points"] <= max_accuracy_drop
    return check


make_callable(__name__, validate)  # edgekd.validate(...) runs the verb; see edgekd._verbs
