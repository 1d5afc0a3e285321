"""fp16 QAT (rtx-gpu-tensorrt, wfp16/afp16): fp16 rounding simulated in training, the fp16 export agrees.

ONNX Runtime's CPU kernels have no fp16 Conv, so the exported graph (fp32 ONNX that TensorRT builds
in fp16) is checked in ORT with its weights cast to fp16 and back, and against torch's own CPU fp16
kernels (every tensor in half precision).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

import edgekd
from edgekd.models import create_student
from edgekd.onnx_export import export_onnx, op_inventory
from edgekd.quant import QConv2d, is_qat_model, to_float


@pytest.fixture(scope="module")
def fp16_student(digits):
    train, val, _ = digits
    torch.manual_seed(0)
    student = create_student("resnet", (1, 8, 8), 10, widths=(8, 16, 16))
    return edgekd.distill(None, student, train, val, loss=edgekd.losses.CE(), target="rtx-gpu-tensorrt", qat=True,
                          epochs=3, qat_epochs=1, lr=5e-3, progress=False)


def test_fp16_qat_rounds_weights_bias_and_input_of_every_layer(fp16_student, digits):
    assert is_qat_model(fp16_student)
    layer = fp16_student.stem[0]
    assert isinstance(layer, QConv2d) and layer.weight_quant.spec.kind == "fp16"
    x = digits[1].x[:8]
    half = lambda t: t.half().float()  # noqa: E731
    with torch.no_grad():
        want = torch.nn.functional.conv2d(half(x), half(layer.weight), half(layer.bias), layer.stride, layer.padding)
        assert torch.equal(layer(x), want)
        assert not torch.equal(layer.weight, half(layer.weight))  # the float weight itself keeps its bits


def test_fp16_qat_exports_the_float_graph_with_fp16_exact_weights(fp16_student, digits, tmp_path):
    train, _, spec = digits
    artifact = edgekd.compile(fp16_student, "rtx-gpu-tensorrt", train, tmp_path, spec=spec)
    assert artifact.precision == "fp16"
    path = artifact.folder / artifact.files["fp32"]
    twin = export_onnx(to_float(fp16_student), (1, 8, 8), tmp_path / "twin.onnx")
    assert op_inventory(path) == op_inventory(twin)  # no Cast/Sub/Add left over from the simulation
    for init in onnx.load(str(path)).graph.initializer:
        value = numpy_helper.to_array(init)
        if value.dtype == np.float32:  # TensorRT's fp16 cast of the weights loses nothing
            assert np.array_equal(value, value.astype(np.float16).astype(np.float32)), init.name


def test_fp16_qat_artifact_and_fp16_kernels_agree_with_torch_simulation(fp16_student, digits, tmp_path):
    train, val, spec = digits
    artifact = edgekd.compile(fp16_student, "rtx-gpu-tensorrt", train, tmp_path, spec=spec)
    proto = onnx.load(str(artifact.folder / artifact.files["fp32"]))
    for init in proto.graph.initializer:  # fp16 weights, cast back to fp32 so ORT's CPU kernels run them
        value = numpy_helper.to_array(init)
        if value.dtype == np.float32:
            init.CopyFrom(numpy_helper.from_array(value.astype(np.float16).astype(np.float32), init.name))
    onnx_out = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": val.x.numpy()})[0]
    with torch.no_grad():
        simulated = fp16_student(val.x).numpy()
        half = to_float(fp16_student).half()(val.x.half()).float().numpy()  # real fp16 compute, every tensor
    y = val.y.numpy()
    acc = {name: float((out.argmax(1) == y).mean()) for name, out in
           [("simulated", simulated), ("onnx", onnx_out), ("half", half)]}
    assert acc["simulated"] > 0.6, acc
    for name in ("onnx", "half"):
        assert abs(acc[name] - acc["simulated"]) * 100 <= 0.3, acc
    assert np.abs(onnx_out - simulated).max() < 0.01
    assert np.abs(half - simulated).max() < 0.05
