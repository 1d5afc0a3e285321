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
    }


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
