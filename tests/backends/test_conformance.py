"""Black-box conformance: every backend available here, on three students, against torch on real data.

fp32 artifacts must agree with torch on ≥ 99% of top-1 predictions, int8 on ≥ 97%. Backends whose
runtime or device is absent skip with the reason. A deliberately broken artifact must fail.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgekd.backends.base import get_backend
from edgekd.errors import MissingExtraError
from edgekd.validate.conformance import check_artifact, reference_logits, run_conformance

RUNS_HERE = ["x86-cpu-onnxruntime", "x86-cpu-openvino", "snapdragon-htp-qnn", "android-executorch-xnnpack",
             "jetson-orin-tensorrt"]
STUDENTS = ["residual", "inverted_residual", "add_concat"]
INT8_ONLY = {"snapdragon-htp-qnn": "the HTP target is int8-only (QNN HTP runs quantized graphs)"}
# The default suite runs one student per backend (fp32 only for ONNX Runtime); the rest is marked slow.
DEFAULT = {("x86-cpu-onnxruntime", "residual", "fp32"), ("x86-cpu-onnxruntime", "residual", "int8"),
           ("x86-cpu-openvino", "inverted_residual", "int8"), ("snapdragon-htp-qnn", "add_concat", "int8"),
           ("android-executorch-xnnpack", "residual", "int8"), ("jetson-orin-tensorrt", "add_concat", "int8")}


def _backend_or_skip(target: str):
    from edgekd.targets import load_target

    ok, why = get_backend(load_target(target).backend).can_compile()
    if not ok:
        pytest.skip(why)


def _cases():
    for target in RUNS_HERE:
        for student in STUDENTS:
            for precision in ("fp32", "int8"):
                slow = (target, student, precision) not in DEFAULT
                marks = [pytest.mark.slow] if slow else []
                yield pytest.param(target, student, precision, marks=marks, id=f"{target}-{student}-{precision}")


@pytest.mark.parametrize("target,student,precision", list(_cases()))
def test_conformance_agrees_with_torch(target, student, precision, students, digits, tmp_path):
    if precision == "fp32" and target in INT8_ONLY:
        pytest.skip(INT8_ONLY[target])
    _backend_or_skip(target)
    train, val, _ = digits
    try:
        result = run_conformance(students[student], target, (train.x.numpy(), train.y.numpy()), val.x.numpy(),
                                 tmp_path, precision)
    except MissingExtraError as exc:  # compiling needs the backend's SDK, which is not installed here
        pytest.skip(str(exc))
    if result.status == "not run here":
        pytest.skip(result.reason)
    assert result.passed, result.to_json()
    assert result.samples == len(val)


def _break_activation_scales(path, factor: float = 0.05) -> None:
    """Shrink every activation scale (not weights): the int8 ranges then clip almost everything."""
    model = onnx.load(str(path))
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits and node.input[1] in inits:
            scale = onnx.numpy_helper.to_array(inits[node.input[1]]) * factor
            inits[node.input[1]].CopyFrom(onnx.numpy_helper.from_array(scale.astype(np.float32), node.input[1]))
    onnx.save(model, str(path))


def test_conformance_fails_when_scales_are_wrong(students, digits, tmp_path):
    from edgekd.compile import compile as compile_model

    train, val, _ = digits
    model = students["residual"]
    artifact = compile_model(model, "x86-cpu-onnxruntime", (train.x.numpy(), train.y.numpy()), tmp_path)
    reference = reference_logits(model, val.x.numpy())
    assert check_artifact(artifact, reference, val.x.numpy()).passed
    _break_activation_scales(artifact.path)
    broken = check_artifact(artifact, reference, val.x.numpy())
    assert broken.status == "failed", broken.to_json()
    assert broken.agreement < 0.97
