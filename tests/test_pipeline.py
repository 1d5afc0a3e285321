"""The public build contract with a user's own teacher and arrays, and its bad-input errors."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import edgekd
from edgekd.backends.base import Artifact
from edgekd.data.spec import PreprocessSpec
from edgekd.errors import DataError
from edgekd.report.manifest import file_sha256
from edgekd.schema.record import Report
from edgekd.schema.sections import Status
from edgekd.targets import load_target


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


def test_build_with_user_teacher_on_arrays_writes_artifact_and_reports(built, user_case):
    result, out = built
    folder = out / "x86-cpu-onnxruntime"
    written = Report.from_dict(json.loads((folder / "report.json").read_text()))
    assert written.to_dict() == json.loads(json.dumps(result.report))  # report.json is the report returned
    assert written.gate.status in (Status.PASSED, Status.FAILED) and written.gate.passed is result.passed
    assert f"**Gate: {written.gate.status.value.upper()}**" in (folder / "report.md").read_text()
    saved = Artifact.read(folder)  # artifact.json names the files, with the hashes they have on disk
    assert {folder / f for f in saved.files.values()} >= {folder / "model.onnx", folder / "model.fp32.onnx"}
    assert saved.sha256 == written.artifact.sha256
    assert saved.sha256["model.onnx"] == file_sha256(folder / "model.onnx")
    assert tuple(PreprocessSpec.load(folder / "preprocess.json").input_shape) == tuple(user_case[1].shape[1:])
    gate = result.report["artifact"]["details"]["speed_gate"]  # int8, or fp32 where clearly faster on this CPU
    assert result.report["artifact"]["precision"] == gate["shipped"] and gate["applied"]
    assert result.artifact_path == folder / ("model.onnx" if gate["shipped"] == "int8" else "model.fp32.onnx")
    if gate["shipped"] == "int8":
        assert "QLinearConv" in result.report["artifact"]["details"]["runtime_ops"]  # int8 kernels really run
    else:
        assert saved.details["int8_model"] == saved.files["int8"] == "model.onnx"


def test_build_artifact_is_faithful_to_student_and_teacher(built, user_case):
    result, _ = built
    art = result.report["artifact"]
    assert art["agreement_student"] >= 0.98
    # the student is now held below the teacher's size, so the int8 artifact is judged against its fp32 student;
    # against the teacher the gate and the ship decision speak (tested below)
    assert art["accuracy"] >= result.report["student"]["accuracy"] - 0.01
    smaller = result.report["student"]["params"] < result.report["teacher"]["params"]
    assert smaller or result.report["search"]["outcome"] == "none-fits"  # else the default, and it says why
    # the gate, checked against accuracies measured here independently of the report's own figures
    teacher, _, _, x_val, y_val = user_case
    with torch.no_grad():
        teacher_acc = float((teacher(torch.from_numpy(x_val)).argmax(1).numpy() == y_val).mean())
    artifact_acc = float((edgekd.load(result.artifact_path)(x_val).argmax(1) == y_val).mean())
    drop = (teacher_acc - artifact_acc) * 100
    gate = result.report["gate"]
    assert gate["accuracy_drop_points"] == pytest.approx(drop, abs=1e-6)
    allowed = load_target("x86-cpu-onnxruntime").gate.max_accuracy_drop
    assert gate["passed"] is (drop <= allowed) and (gate["reasons"] == []) is (drop <= allowed)


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
    assert result.report["run"]["status"] == Status.NOT_RUN
    text = (tmp_path / "ethos-u55" / "report.md").read_text()  # the people's copy carries the check's figures
    assert f"{check['accuracy'] * 100:.2f}%" in text and check["runtime"] in text
    teacher = result.report["teacher_artifact"]  # the row to beat is built for the device too, and not run either
    assert teacher["status"] == "not run here" and teacher["accuracy"] is None
    assert (tmp_path / teacher["path"]).exists() and teacher["backend"] == "ethosu"


def test_build_compiles_and_validates_the_teacher_for_the_same_runtime(built, user_case):
    result, out = built
    rep = result.report
    t = rep["teacher_artifact"]
    assert t["status"] == "run here" and t["backend"] == "onnxruntime" and t["precision"] in ("int8", "fp32")
    timed = t["speed_gate"]  # the row is the faster of the teacher's two builds, both timed in this run
    assert timed["applied"] and set(timed["p50_ms"]) == {"int8", "fp32"} and t["precision"] == timed["shipped"]
    assert Artifact.read(out / t["path"]).precision == t["precision"]  # the row's own model file, loadable
    assert Artifact.read((out / t["path"]).parent).precision == "int8"  # the folder keeps int8: rebuilds match
    assert t["latency_kind"] == "measured" and t["latency_p50_ms"] > 0
    assert t["calibration"]["recipe"] == result.artifact.details["calibration"]["recipe"]  # same calibration
    path = out / t["path"]
    assert path == result.teacher_artifact.path and path.exists() and path.parent == out / "teacher" / t["target"]
    _, _, _, x_val, y_val = user_case
    accuracy = float((edgekd.load(path)(x_val).argmax(1) == y_val).mean())
    assert accuracy == pytest.approx(t["accuracy"])
    versus = rep["versus_teacher"]
    assert versus["speedup_vs_compiled_teacher"] == pytest.approx(
        t["latency_p50_ms"] / rep["artifact"]["latency_ms"]["p50"])
    assert versus["speedup_vs_teacher_torch_eager"] == pytest.approx(
        rep["teacher"]["latency_ms"]["p50"] / rep["artifact"]["latency_ms"]["p50"])
    assert versus["accuracy_delta_points"] == pytest.approx((rep["artifact"]["accuracy"] - t["accuracy"]) * 100)


def test_build_ships_the_student_only_when_it_is_faster_than_the_compiled_teacher(built):
    result, out = built
    versus, ship = result.report["versus_teacher"], result.report["ship"]
    assert ship["requested"] == "auto"
    assert ship["choice"] == ("student" if versus["student_faster"] else "teacher") == result.ship
    assert (out / ship["artifact"]).exists()
    assert result.shipped_artifact.path == (out / ship["artifact"])
    fits = result.report["teacher_artifact"]
    assert versus["teacher_fits"] == (fits["within_budget"] and fits["passes_accuracy_gate"])


def test_python_build_writes_manifest_and_html_like_the_cli(built):
    import json

    result, out = built
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["targets"]["x86-cpu-onnxruntime"]["status"] in ("passed", "failed")
    assert result.manifest_path == out / "manifest.json" and result.html_path == out / "report.html"
    html = result.html_path.read_text()
    assert "Versus the teacher compiled for the same runtime" in html and "None" not in html


@pytest.mark.parametrize("bad", ["both", "Teacher", ""])
def test_build_rejects_an_unknown_ship_choice_before_any_work(user_case, tmp_path, bad):
    from edgekd.errors import ConfigError

    teacher, x_train, y_train, x_val, y_val = user_case
    with pytest.raises(ConfigError, match="ship must be one of"):
        edgekd.build(teacher, train=(x_train, y_train), val=(x_val, y_val), out_dir=tmp_path, ship=bad,
                     progress=False)
    assert not (tmp_path / "teacher").exists() and not (tmp_path / "x86-cpu-onnxruntime").exists()


def test_choose_ship_follows_the_request_and_the_runtime_speed():
    from edgekd.schema.record import TeacherArtifactSection as Teacher, VersusSection as Versus
    from edgekd.report.versus import choose_ship

    built = Teacher.from_dict({"path": "teacher/x/model.onnx", "status": "run here"})
    faster = Versus(student_faster=True, speedup_vs_compiled_teacher=2.0)
    slower = Versus(student_faster=False, speedup_vs_compiled_teacher=0.5)
    assert choose_ship("auto", faster, built).choice == "student"
    assert choose_ship("auto", slower, built).choice == "teacher"
    assert choose_ship("auto", Versus(student_faster=None), built).choice == "student"  # unknown: the default
    assert choose_ship("student", slower, built).choice == "student"
    assert choose_ship("teacher", faster, built).choice == "teacher"
    not_built = Teacher.from_dict({"status": "not built here", "reason": "no backend"})
    assert choose_ship("teacher", faster, not_built).choice == "student"


def test_auto_ship_never_picks_a_student_that_fails_the_gate_the_compiled_teacher_passes():
    from edgekd.report.versus import choose_ship
    from edgekd.schema.record import TeacherArtifactSection as Teacher, VersusSection as Versus

    passing = Teacher.from_dict({"path": "teacher/x/model.onnx", "status": "run here", "passes_accuracy_gate": True})
    failing = Teacher.from_dict({"path": "teacher/x/model.onnx", "status": "run here", "passes_accuracy_gate": False})
    faster = Versus(student_faster=True, speedup_vs_compiled_teacher=7.0, accuracy_delta_points=-71.0)
    assert choose_ship("auto", faster, passing, student_passed=False).choice == "teacher"
    assert choose_ship("auto", faster, passing, student_passed=True).choice == "student"
    assert choose_ship("auto", faster, failing, student_passed=False).choice == "student"  # neither passes: faster
    assert choose_ship("student", faster, passing, student_passed=False).choice == "student"  # asked for


def test_teacher_fits_needs_both_the_budget_and_the_gate():
    from edgekd.schema.record import TeacherArtifactSection
    from edgekd.report.versus import teacher_fits

    def fits(within, gate):
        return teacher_fits(TeacherArtifactSection.from_dict(
            {"within_budget": within, "passes_accuracy_gate": gate, "latency_budget_ms": 0.5}))

    assert fits(True, True) is True
    assert fits(False, True) is False
    assert fits(True, False) is False
    assert fits(None, True) is None
