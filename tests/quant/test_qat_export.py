"""QAT → QDQ ONNX with learned scales; ONNX Runtime accuracy matches torch fake-quant (digits)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import edgekd
from edgekd.distill import evaluate
from edgekd.models import create_student
from edgekd.quant import QConv2d, QLinear, is_qat_model


@pytest.fixture(scope="module")
def qat_student(digits, digits_teacher):
    train, val, _ = digits
    torch.manual_seed(0)
    student = create_student("resnet", (1, 8, 8), 10, widths=(8, 16, 16))
    return edgekd.distill(digits_teacher, student, train, val, loss=edgekd.losses.TopKLD(k=3),
                          target="x86-cpu-onnxruntime", qat=True, epochs=3, qat_epochs=1, lr=5e-3,
                          progress=False)


def test_distill_qat_returns_a_prepared_student_with_history(qat_student):
    assert is_qat_model(qat_student)
    phases = [r["phase"] for r in qat_student.edgekd_history]
    assert phases == ["float", "float", "qat"]


def test_compile_qat_student_carries_learned_scales_and_matches_torch(qat_student, digits, tmp_path):
    train, val, spec = digits
    artifact = edgekd.compile(qat_student, "x86-cpu-onnxruntime", train, tmp_path, spec=spec)
    assert artifact.details["quantization"].startswith("qat")
    proto = onnx.load(str(artifact.path))
    inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    layers = {n: m for n, m in qat_student.named_modules() if isinstance(m, (QConv2d, QLinear))}
    for name, module in layers.items():
        learned = module.weight_quant.scale.detach().numpy()
        exported = next(v for k, v in inits.items() if k.startswith(name + ".") and k.endswith("weight_scale"))
        np.testing.assert_allclose(exported, learned, rtol=1e-6)  # learned, not re-calibrated
    runner = edgekd.load(artifact.folder)
    ort_acc = float((runner(val.x.numpy()).argmax(1) == val.y.numpy()).mean())
    torch_acc = evaluate(qat_student, val)
    assert abs(ort_acc - torch_acc) * 100 <= 0.3, (ort_acc, torch_acc)
    assert torch_acc > 0.6  # a sanity floor: 2 float + 1 QAT epoch


@pytest.mark.parametrize("target", ["x86-cpu-openvino"])
def test_qdq_backends_run_the_learned_scales_and_match_torch(qat_student, digits, tmp_path, target):
    """OpenVINO takes the same QDQ export as ONNX Runtime: no re-calibration, same accuracy. (Not QNN: the
    export quantizes the inputs of weighted layers only, and the HTP refuses the float Add/pool between them.)"""
    from edgekd.backends.base import get_backend
    from edgekd.targets import load_target

    ok, why = get_backend(load_target(target).backend).is_available()
    if not ok:
        pytest.skip(why)
    train, val, spec = digits
    artifact = edgekd.compile(qat_student, target, train, tmp_path, spec=spec)
    assert artifact.details["quantization"].startswith("qat") and "qat" not in artifact.details.get("calibration_cache", "")
    acc = float((edgekd.load(artifact.folder)(val.x.numpy()).argmax(1) == val.y.numpy()).mean())
    torch_acc = evaluate(qat_student, val)
    assert abs(acc - torch_acc) * 100 <= 0.6, (target, acc, torch_acc)  # two points of 360 at most
