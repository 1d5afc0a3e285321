"""Validation: run the artifact in its own runtime and compare it with the teacher."""

from __future__ import annotations

import logging
import sys
import types

import numpy as np
import torch

from edgekd.backends.base import Artifact, get_backend
from edgekd.data.sources import as_array_data
from edgekd.distill.trainer import predict
from edgekd.errors import NotRunHere
from edgekd.validate.gates import evaluate_gate
from edgekd.validate.latency import runner_latency, torch_latency
from edgekd.validate.metrics import accuracy, compare

__all__ = ["evaluate_gate", "reference_check", "validate"]
log = logging.getLogger(__name__)


def validate(artifact: Artifact | str, teacher: torch.nn.Module, val, student: torch.nn.Module | None = None,
             *, threads: int = 1, latency_runs: int = 200, measure_latency: bool = True) -> dict:
    """Run ``artifact`` in its runtime on ``val`` and compare it with ``teacher`` (and ``student``).

    Returns a dict with ``teacher``, ``student`` (when given) and ``artifact`` sections holding
    accuracy, top-1 agreement, mean KL and cosine to the teacher, and batch-1 latency.
    """
    if not isinstance(artifact, Artifact):
        artifact = Artifact.read(artifact)
    data = as_array_data(val, "val")
    x, y = data.numpy()
    try:
        runner = get_backend(artifact.backend).load(artifact, threads=threads)
    except NotRunHere as exc:  # the artifact exists, its runtime or device does not: say so, never "passed"
        return _not_run(artifact, teacher, data, student, str(exc))
    teacher_logits = predict(teacher, data.x).numpy()
    student_logits = predict(student, data.x).numpy() if student is not None else None
    artifact_logits = np.asarray(runner(x), dtype=np.float32)

    report: dict = {"samples": len(y), "teacher": {"accuracy": accuracy(teacher_logits, y)}}
    if student_logits is not None:
        report["student"] = compare(student_logits, y, teacher_logits, None)
    report["artifact"] = {"path": str(artifact.path), "backend": artifact.backend, "precision": artifact.precision,
                          "size_bytes": artifact.size_bytes,
                          **compare(artifact_logits, y, teacher_logits, student_logits)}
    if measure_latency:
        one = x[:1]
        report["teacher"]["latency_ms"] = torch_latency(teacher, one, threads, latency_runs)
        if student is not None:
            report["student"]["latency_ms"] = torch_latency(student, one, threads, latency_runs)
        report["artifact"]["latency_ms"] = runner_latency(runner, one, threads, latency_runs)
    return report


def _not_run(artifact: Artifact, teacher, data, student, reason: str) -> dict:
    """Teacher (and fp32 student) measured; the artifact recorded with why it did not run here."""
    x, y = data.numpy()
    teacher_logits = predict(teacher, data.x).numpy()
    student_logits = predict(student, data.x).numpy() if student is not None else None
    report: dict = {"samples": len(y), "teacher": {"accuracy": accuracy(teacher_logits, y)}}
    if student_logits is not None:
        report["student"] = compare(student_logits, y, teacher_logits, None)
    report["artifact"] = {"path": str(artifact.path), "backend": artifact.backend, "precision": artifact.precision,
                          "size_bytes": artifact.size_bytes, "status": "not run here", "not_run": reason,
                          "accuracy": None,
                          "agreement_teacher": None, "kl_teacher": None, "cosine_teacher": None}
    check = reference_check(artifact, x, y, teacher_logits, student_logits)
    if check is not None:
        report["artifact"]["reference_check"] = check
    return report


def reference_check(artifact: Artifact, x: np.ndarray, y: np.ndarray, teacher_logits: np.ndarray,
                    student_logits: np.ndarray | None = None, max_accuracy_drop: float | None = None) -> dict | None:
    """Where the device is absent but the backend can run the same quantized graph in a reference
    runtime here (``backend.reference``), its accuracy and agreement, labelled as not the device's."""
    backend = get_backend(artifact.backend)
    if not hasattr(backend, "reference"):
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


class _CallableModule(types.ModuleType):
    """``import edgekd.validate`` binds this module as ``edgekd.validate``; calling it still runs the verb."""

    def __call__(self, *args, **kwargs):
        return validate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
