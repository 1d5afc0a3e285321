"""Every registered backend: availability with reasons, artifacts for the ones that cannot run here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import edgekd
from edgekd.backends.base import list_backends
from edgekd.backends.doctor import doctor
from edgekd.errors import CompileError, MissingExtraError, NotRunHere


@pytest.fixture(scope="module")
def calib(digits):
    train, val, _ = digits
    return (train.x.numpy(), train.y.numpy()), val


@pytest.mark.parametrize("name", list_backends())
def test_backend_availability_decides_whether_its_artifacts_load(name, tmp_path):
    """Available: its runtime is installed here. Unavailable: a reason, and loading one of its artifacts
    fails with a typed "not run here" / missing-extra error, never a silent run somewhere else."""
    from edgekd.backends.base import Artifact, get_backend
    from edgekd.backends.doctor import runtime_installed

    try:
        backend = get_backend(name)
    except ImportError:
        pytest.skip(f"{name}: SDK not installed")
    ok, why = backend.is_available()
    if ok:
        assert why == "" and runtime_installed(name)[0]
        return
    assert why, f"{name}: unavailable without a reason"
    model = tmp_path / "model.bin"
    model.write_bytes(b"not a model")
    artifact = Artifact(path=model, backend=name, target="t", precision="int8", input_shape=(1, 8, 8),
                        static_batch=1, details={"device": "NPU"} if name == "openvino-npu" else {})
    with pytest.raises((NotRunHere, MissingExtraError)):
        backend.load(artifact)


def test_doctor_lists_every_backend_with_reasons():
    rows = {r["backend"]: r for r in doctor()}
    assert set(rows) == set(list_backends())
    for r in rows.values():
        assert r["available"] or r["available_reason"]
        assert r["hardware"] or r["hardware_reason"]
    assert rows["onnxruntime"]["available"] and rows["onnxruntime"]["hardware"]


def test_tensorrt_qdq_follows_placement_and_says_engine_not_built(students, calib, tmp_path):
    from edgekd.backends.tensorrt import check_placement

    artifact = edgekd.compile(students["add_concat"], "jetson-orin-tensorrt", calib[0], tmp_path)
    d = artifact.details
    assert check_placement(artifact.folder / artifact.files["qdq_onnx"]) == []
    assert d["onnxruntime_check"]["top1_agreement_fp32"] >= 0.97
    if d["engine"] != "built":
        assert d["engine"].startswith("engine not built: needs TensorRT and an NVIDIA GPU")
        with pytest.raises(NotRunHere, match="engine not built"):
            edgekd.load(artifact.path)
        report = edgekd.validate(artifact, students["add_concat"], calib[1], measure_latency=False)
        assert report["artifact"]["status"] == "not run here" and report["artifact"]["accuracy"] is None


def test_tensorrt_placement_check_rejects_asymmetric_qdq(students, calib, tmp_path):
    from edgekd.backends.tensorrt import check_placement

    artifact = edgekd.compile(students["residual"], "x86-cpu-onnxruntime", calib[0], tmp_path)  # uint8, int32 bias
    problems = check_placement(artifact.path)
    assert any("not symmetric int8" in p for p in problems)


def test_intel_npu_builds_the_ir_and_gives_openvino_reason(students, calib, tmp_path):
    pytest.importorskip("openvino")
    artifact = edgekd.compile(students["residual"], "intel-npu-openvino", calib[0], tmp_path)
    assert artifact.path.suffix == ".xml" and artifact.static_batch == 1
    ok, why = edgekd.backends.base.get_backend("openvino-npu").is_available()
    if not ok:
        assert "NPU" in why and artifact.details["device_compile"].startswith("not compiled here")
        with pytest.raises(NotRunHere, match="NPU"):
            edgekd.load(artifact.path)


def test_ethosu_builds_with_vela_or_names_what_is_missing(students, calib, tmp_path):
    from edgekd.backends.base import get_backend

    ok, why = get_backend("ethosu").can_compile()
    if ok:
        artifact = edgekd.compile(students["residual"], "ethos-u55", calib[0], tmp_path)
        assert artifact.details["predicted_latency_ms"]["ms"] > 0
        assert artifact.details["vela"]["operators"]["npu"] > 0
        assert artifact.details["tflite_check"]["top1_agreement_torch"] >= 0.97
    else:
        with pytest.raises(MissingExtraError, match="ethosu"):
            edgekd.compile(students["residual"], "ethos-u55", calib[0], tmp_path)
        assert "Vela" in why or "ai-edge-litert" in why


@pytest.mark.slow
def test_coreml_converts_with_op_list_and_sizes_and_skips_predictions(students, calib, tmp_path):
    pytest.importorskip("coremltools")
    artifact = edgekd.compile(students["inverted_residual"], "iphone-coreml", calib[0], tmp_path)
    d = artifact.details
    assert d["ops"]["conv"] >= 5 and "constexpr_affine_dequantize" in d["ops_int8w"]
    assert d["sizes_bytes"]["int8_weights"] < d["sizes_bytes"]["fp16"]
    assert d["ops_w8a8"].get("quantize", 0) > 0  # W8A8: activations quantized too
    try:
        edgekd.load(artifact.path)
    except NotRunHere as exc:
        pytest.skip(str(exc))


class SqueezeExcite(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(ch, ch // 4, 1), nn.Conv2d(ch // 4, ch, 1)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


def _se_hardswish_224(classes: int = 5) -> nn.Module:
    """Not in our registry: 224×224 RGB, stride-2 convs, squeeze-excitation, hard-swish."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.Hardswish(),
                         nn.Conv2d(16, 16, 3, 2, 1, groups=16), nn.BatchNorm2d(16), nn.Hardswish(), SqueezeExcite(16),
                         nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32), nn.Hardswish(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(32, classes)).eval()


@pytest.mark.parametrize("target", ["x86-cpu-onnxruntime", "x86-cpu-openvino"])
def test_unknown_224_model_with_se_and_hardswish_compiles_and_validates(target, tmp_path):
    from edgekd.backends.base import get_backend
    from edgekd.targets import load_target

    ok, why = get_backend(load_target(target).backend).is_available()
    if not ok:
        pytest.skip(why)
    model = _se_hardswish_224()
    x = np.random.default_rng(0).standard_normal((48, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        y = model(torch.from_numpy(x)).argmax(1).numpy()
    artifact = edgekd.compile(model, target, (x[:16], y[:16]), tmp_path, calib_size=16)
    report = edgekd.validate(artifact, model, (x[16:], y[16:]), measure_latency=False)
    assert report["artifact"]["agreement_teacher"] >= 0.8  # random weights, random data: near-tied logits
    assert edgekd.load(artifact.path)(x[:2]).shape == (2, 5)


def test_unsupported_operator_is_named_with_the_backend(tmp_path):
    class Fft(nn.Module):
        def forward(self, x):
            return torch.fft.rfft(x.flatten(1)).abs()[:, :4]

    x = np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32)
    with pytest.raises(CompileError, match=r"(?i)onnx export.*fft|fft.*onnx"):
        edgekd.compile(Fft(), "x86-cpu-onnxruntime", (x, np.zeros(16, np.int64)), tmp_path)
