"""A synthetic matrix result shaped like build_all's, so report tests need no training."""

from pathlib import Path

import pytest

from edgekd.matrix import FAILED, NOT_BUILT, NOT_RUN, PASSED, MatrixResult, TargetResult

LABELS = [str(c) for c in range(10)]


def _report(name, backend, precision, *, accuracy=None, latency=None, kind="none", history_shift=0.0):
    teacher_pc = [0.98, 1.0, 0.97, 0.95, 1.0, 0.96, 1.0, 0.99, 0.9, 0.94]
    art = {"path": "model.onnx", "backend": backend, "precision": precision, "size_bytes": 104_900,
           "files": {"model": "model.onnx"}, "static_batch": None, "latency_budget_ms": 0.5, "within_budget": None,
           "details": {"kept_float": [{"layer": "/fc/Gemm", "op": "Gemm", "reason": "most sensitive layer"}],
                       "calibration": {"recipe": "minmax-256", "samples": 256}}}
    if accuracy is not None:
        art.update(accuracy=accuracy, agreement_teacher=accuracy, kl_teacher=0.05, cosine_teacher=0.99,
                   agreement_student=0.99, per_class_accuracy=[max(0.0, a - 0.02) for a in teacher_pc])
    history = [{"epoch": e + 1, "kd": 2.0 / (e + 1) + history_shift, "ce": 1.0 / (e + 1),
                "val_accuracy": 0.8 + 0.05 * e} for e in range(3)]
    return {
        "target": {"name": name, "backend": backend, "device": "cpu",
                   "format": {"weights": precision, "activations": "uint8", "weight_granularity": "per_channel",
                              "weight_symmetric": True, "activation_symmetric": False}},
        "dataset": {"name": "digits", "train": 1437, "val": 360, "input_shape": [1, 8, 8], "classes": LABELS},
        "teacher": {"arch": "TeacherCNN", "accuracy": 0.975, "per_class_accuracy": teacher_pc},
        "student": {"arch": {"name": "resnet"}, "accuracy": 0.96, "per_class_accuracy": teacher_pc[::-1]},
        "artifact": art,
        "distillation": {"history": history},
        "gate": {"passed": None if accuracy is None else accuracy >= 0.965, "accuracy_drop_points": 0.5,
                 "max_accuracy_drop": 1.0, "reasons": []},
        "run": {"latency": {"kind": kind, "ms": latency, "how": "measured here in onnxruntime, batch 1",
                            "note": "" if kind == "measured" else "not measured on the device (it is aarch64)"}},
        **_baseline(latency, kind, accuracy),
    }


def _baseline(latency, kind, accuracy):
    """The teacher compiled for the target: measured 0.10522956111649119 ms where the student's latency is."""
    t_ms = 0.10522956111649119 if kind == "measured" else None
    speed = t_ms / latency if t_ms and latency else None
    return {
        "teacher_artifact": {"status": "run here" if kind == "measured" else "not run here", "precision": "int8",
                             "backend": "onnxruntime", "accuracy": 0.9722222222222222 if t_ms else None,
                             "latency_p50_ms": t_ms, "latency_kind": "measured" if t_ms else "none",
                             "size_bytes": 250_000, "path": "teacher/t/model.onnx", "within_budget": bool(t_ms),
                             "passes_accuracy_gate": bool(t_ms), "reason": "" if t_ms else "not run here: no device"},
        "versus_teacher": {"speedup_vs_compiled_teacher": speed, "speedup_basis": "measured" if speed else None,
                           "speedup_vs_teacher_torch_eager": 9.123456789 if speed else None,
                           "accuracy_delta_points": (accuracy - 0.9722222222222222) * 100 if t_ms and accuracy else
                           None, "size_ratio": 2.3831, "student_faster": speed > 1 if speed else None,
                           "teacher_fits": True if t_ms else None},
        "ship": {"requested": "auto", "choice": "student", "reason": "faster", "artifact": "t/model.onnx"},
    }


SEARCH = {"outcome": "found", "arch": {"name": "resnet", "depths": (1, 1, 1), "widths": (8, 16, 32), "act": "relu"},
          "space": "resnet-compact", "score_name": "diswot", "score": -0.1, "predicted_latency_ms": 0.0421234567,
          "proposals": 20, "rejected": 3, "seconds": 2.5, "latency_kind": "profile",
          "constraints": {"teacher_params": 35674, "max_params": 35673, "latency_limit_ms": 0.105229561,
                          "target_budget_ms": 0.5, "teacher_latency_ms": 0.105229561},
          "finalists": [{"arch": {"name": "resnet", "widths": (8, 16, 32)}, "score": -0.1,
                         "predicted_latency_ms": 0.0421234567, "params": 19810, "phase": "include"},
                        {"arch": {"name": "resnet", "widths": (8, 24, 32)}, "score": -0.2,
                         "predicted_latency_ms": 0.05, "params": 25000, "phase": "mutate"}]}


@pytest.fixture
def search_summary() -> dict:
    """A build report's ``search`` section with finalists and the teacher constraints."""
    return dict(SEARCH)


@pytest.fixture
def synthetic_matrix(tmp_path) -> MatrixResult:
    results = [
        TargetResult("x86-cpu-onnxruntime", PASSED, "", _report("x86-cpu-onnxruntime", "onnxruntime", "int8",
                                                                 accuracy=0.97, latency=0.05, kind="measured")),
        TargetResult("x86-cpu-openvino", PASSED, "", _report("x86-cpu-openvino", "openvino", "int8", accuracy=0.968,
                                                              latency=0.08, kind="measured")),
        TargetResult("raspberry-pi-onnxruntime", FAILED, "artifact top-1 95.00% is 2.50 points below the teacher",
                     _report("raspberry-pi-onnxruntime", "onnxruntime", "int8", accuracy=0.95)),
        TargetResult("rtx-gpu-tensorrt", NOT_RUN, "not run here: needs TensorRT and an NVIDIA GPU",
                     _report("rtx-gpu-tensorrt", "tensorrt", "fp16", history_shift=0.3)),
        TargetResult("fake-npu", NOT_BUILT, "not built here: backend 'fakenpu' not available"),
    ]
    manifest = {"created": "2026-11-26T00:00:00+00:00", "command": "edgekd build --all",
                "inputs": {"dataset": "digits", "train": {"samples": 1437}, "val": {"samples": 360},
                           "teacher": {"arch": "TeacherCNN", "source": "user"}},
                "git": {"revision": "abc123", "dirty": False}, "seeds": {"build": 0}, "tools": {"torch": "2.13"},
                "environment": {"cpu": "test cpu", "cpus": 2, "python": "3.11"},
                "targets": {r.target: {"status": r.status, "share_key": "k8" if "int8" in str(r.report) else "k16",
                                       "files": {}} for r in results}}
    return MatrixResult(results, Path(tmp_path), manifest=manifest, seconds=12.0)


@pytest.fixture
def make_report():
    """The synthetic report of one target: ``make_report(name, backend, precision, accuracy=, latency=, kind=)``."""
    return _report
