"""``edgekd.build(..., qat=True)``: the pipeline distills in the target's format and ships learned scales."""

from __future__ import annotations

import pytest

import edgekd
from edgekd.errors import CompileError
from edgekd.quant import format_from, is_qat_model, prepare_qat


def test_build_with_qat_exports_learned_scales_and_validates_in_onnxruntime(digits, digits_teacher, tmp_path):
    train, val, spec = digits
    result = edgekd.build(digits_teacher, train=(train.x.numpy(), train.y.numpy()),
                          val=(val.x.numpy(), val.y.numpy()), target="x86-cpu-onnxruntime", out_dir=tmp_path,
                          student={"name": "resnet", "widths": (8, 16, 16)}, epochs=3, lr=5e-3, qat=True,
                          qat_teacher="self", search=False, progress=False, latency_runs=5)
    assert is_qat_model(result.student)
    assert result.report["distillation"]["qat"]["teacher"] == "self"
    assert result.artifact.details["quantization"].startswith("qat")
    assert [r["phase"] for r in result.history] == ["float", "float", "qat"]
    assert result.report["artifact"]["accuracy"] > 0.6


def test_compile_refuses_a_qat_student_trained_for_another_format(digits, tmp_path):
    train, _, spec = digits
    model = edgekd.create_student("resnet", (1, 8, 8), 10, widths=(8, 8, 8))
    w4 = prepare_qat(model, format_from("int4", "int8"), train.x[:64])
    with pytest.raises(CompileError, match="quantization-aware"):
        edgekd.compile(w4, "x86-cpu-onnxruntime", train, tmp_path, spec=spec)


def test_build_with_qat_for_an_fp16_target_trains_with_fp16_rounding(digits, digits_teacher, tmp_path):
    train, val, spec = digits
    result = edgekd.build(digits_teacher, train=(train.x.numpy(), train.y.numpy()),
                          val=(val.x.numpy(), val.y.numpy()), target="rtx-gpu-tensorrt", out_dir=tmp_path,
                          student={"name": "resnet", "widths": (8, 8, 8)}, epochs=3, lr=5e-3, qat=True,
                          search=False, progress=False, latency_runs=5)
    assert is_qat_model(result.student)  # used to fall back to float distillation silently
    assert [r["phase"] for r in result.history] == ["float", "float", "qat"]
    ops = result.artifact.details["exported_ops"]
    assert "Cast" not in ops and "Conv" in ops  # fp16 rounding is a training device, not exported graph ops


def test_every_buildable_target_compiles_a_qat_student(digits, tmp_path):
    """``build --all --qat`` hands each target a QAT student: backends that cannot export learned scales
    get its float twin and say so; none may fail on the fake-quant ops."""
    import torch

    from edgekd.backends.base import get_backend
    from edgekd.capability import capability
    from edgekd.targets import list_targets

    train, val, spec = digits
    for target in list_targets():
        if not target.format.trains_aware or not capability(target).build:
            continue
        torch.manual_seed(0)
        student = edgekd.create_student("resnet", (1, 8, 8), 10, widths=(8, 8, 8)).eval()
        qat = prepare_qat(student, target.format, train.x[:64]).eval()
        artifact = edgekd.compile(qat, target, train, tmp_path, spec=spec)
        ops = artifact.details.get("exported_ops") or {}
        assert not {"Round", "Div"} & set(ops), f"{target.name}: fake-quant arithmetic exported: {ops}"
        if get_backend(target.backend).accepts_qat:  # learned scales carried
            assert artifact.details["quantization"].startswith("qat"), target.name
        elif not target.format.is_quantized:
            assert "fp16-exact weights" in artifact.details["qat"], target.name
        else:
            assert "re-calibrates its float twin" in artifact.details["qat"], target.name
