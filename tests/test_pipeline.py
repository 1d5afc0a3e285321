"""The public build contract with a user's own teacher and arrays, and its bad-input errors."""

import numpy as np
import pytest
import torch
from torch import nn

import edgekd
from edgekd.errors import DataError


class UserTeacher(nn.Module):
    """A user's own small model, unknown to edgekd's registries."""

    def __init__(self, classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 24, 3, padding=1), nn.ReLU(), nn.Conv2d(24, 48, 3, padding=1),
                                 nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(192, classes))

    def forward(self, x):
        return self.net(x)


@pytest.fixture(scope="module")
def user_case(digits):
    from edgekd.distill import TrainConfig, fit
    from edgekd.distill.losses import CE

    train, val, _ = digits
    torch.manual_seed(1)
    teacher = UserTeacher()
    fit(teacher, train, None, CE(), None, TrainConfig(epochs=10, lr=5e-3, progress=False))
    (x_train, y_train), (x_val, y_val) = train.numpy(), val.numpy()
    return teacher.eval(), x_train, y_train, x_val, y_val


@pytest.fixture(scope="module")
def built(user_case, tmp_path_factory):
    teacher, x_train, y_train, x_val, y_val = user_case
    out = tmp_path_factory.mktemp("build")
    result = edgekd.build(teacher, train=(x_train, y_train), val=(x_val, y_val), target="x86-cpu-onnxruntime",
                          out_dir=out, epochs=12, progress=False, latency_runs=50)
    return result, out


def test_build_with_user_teacher_on_arrays_writes_artifact_and_reports(built):
    result, out = built
    folder = out / "x86-cpu-onnxruntime"
    for name in ("model.onnx", "model.fp32.onnx", "report.json", "report.md", "preprocess.json", "artifact.json"):
        assert (folder / name).exists(), name
    assert result.artifact_path == folder / "model.onnx"
    assert result.report["artifact"]["precision"] == "int8"
    assert "QLinearConv" in result.report["artifact"]["details"]["runtime_ops"]  # int8 kernels really run


def test_build_artifact_is_faithful_to_student_and_teacher(built, user_case):
    result, _ = built
    art = result.report["artifact"]
    assert art["agreement_student"] >= 0.98
    assert art["accuracy"] >= result.report["teacher"]["accuracy"] - 0.03
    assert result.report["gate"]["passed"] == (result.report["gate"]["accuracy_drop_points"] <= 1.0)


def test_load_runs_artifact_in_onnxruntime_and_matches_the_report(built, user_case):
    result, _ = built
    _, _, _, x_val, y_val = user_case
    runner = edgekd.load(result.artifact_path)
    assert runner.backend == "onnxruntime"
    logits = runner(x_val[:8])
    assert logits.shape == (8, 10) and logits.dtype == np.float32
    accuracy = float((runner(x_val).argmax(1) == y_val).mean())
    assert accuracy == pytest.approx(result.report["artifact"]["accuracy"])


def test_build_rejects_teacher_with_wrong_class_count_before_training(user_case, tmp_path):
    _, x_train, y_train, x_val, y_val = user_case
    with pytest.raises(DataError, match="teacher outputs 7 classes but the labels have 10"):
        edgekd.build(UserTeacher(classes=7), train=(x_train, y_train), val=(x_val, y_val), out_dir=tmp_path,
                     progress=False)
    assert not any(tmp_path.iterdir())  # nothing written, no checkpoint


def test_build_rejects_input_shape_the_teacher_cannot_take(tmp_path):
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))  # expects 8×8
    x = np.zeros((40, 1, 12, 12), np.float32)
    y = np.arange(40) % 10
    with pytest.raises(DataError, match=r"cannot run on the data's inputs of shape \(1, 12, 12\)"):
        edgekd.build(teacher, train=(x, y), out_dir=tmp_path, progress=False)


def test_build_rejects_too_small_calibration_split(user_case, tmp_path):
    teacher, x_train, y_train, x_val, y_val = user_case
    with pytest.raises(DataError, match="calibration: 4 samples requested"):
        edgekd.build(teacher, train=(x_train, y_train), val=(x_val, y_val), out_dir=tmp_path, epochs=1,
                      calib_size=4, progress=False)
    assert not (tmp_path / "x86-cpu-onnxruntime").exists()


def test_build_for_a_device_not_here_reports_not_run_with_its_reference_check(user_case, tmp_path):
    from edgekd.backends.base import get_backend

    if not get_backend("ethosu").can_compile()[0]:
        pytest.skip(get_backend("ethosu").can_compile()[1])
    teacher, x_train, y_train, x_val, y_val = user_case
    result = edgekd.build(teacher, train=(x_train, y_train), val=(x_val, y_val), target="ethos-u55", out_dir=tmp_path,
                          student={"name": "resnet", "widths": (8, 16, 32)}, epochs=3, progress=False)
    assert not result.passed and result.report["gate"]["status"] == "not run here"
    check = result.report["artifact"]["reference_check"]
    assert check["agreement_student"] >= 0.9 and "within_accuracy_gate" in check
    text = (tmp_path / "ethos-u55" / "report.md").read_text()
    assert "NOT RUN HERE" in text and "Reference check, not the device" in text
