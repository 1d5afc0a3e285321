"""`edgekd distill`: what it writes, a student rebuilt from weights + JSON, bad input, --resume."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.data import load_dataset, split
from edgekd.distill import evaluate
from edgekd.distill.qad import DEFAULT_QAT_TEACHER
from edgekd.models import TeacherCNN, create_student

ARCH_KEYS = ("schema", "name", "input_shape", "num_classes", "qat_format")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # two torch threads on two shared, busy cores spin against each other (5x slower here)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits_val():
    """The split the command makes for a dataset without a test set: stratified 20%, seed 0."""
    bundle = load_dataset("digits")
    return split(bundle.train, int(len(bundle.train) * 0.2), seed=0)


@pytest.fixture(scope="module")
def teacher_file(tmp_path_factory, digits_val):
    """A small TeacherCNN trained on the command's training split, saved as state_dict + arch JSON."""
    from edgekd.distill import TrainConfig, fit
    from edgekd.distill.losses import CE

    val, train = digits_val
    torch.manual_seed(0)
    teacher = TeacherCNN((1, 8, 8), 10, width=8)
    fit(teacher, train, None, CE(), None, TrainConfig(epochs=4, lr=1e-2, progress=False))
    folder = tmp_path_factory.mktemp("teacher")
    torch.save(teacher.state_dict(), folder / "teacher.pt")
    (folder / "teacher.json").write_text(json.dumps({"name": "TeacherCNN", "width": 8}))
    return folder / "teacher.pt", evaluate(teacher.eval(), val)


def _distill(out, teacher, *extra):
    args = ["distill", "--dataset", "digits", "--teacher", str(teacher), "--student", "resnet",
            "--student-opt", "depths=[1,1]", "--student-opt", "widths=[8,16]", "--loss", "topkld",
            "--loss-opt", "k=3", "--loss-opt", "temperature=4", "--epochs", "2", "--batch-size", "32",
            "--lr", "0.01", "--no-augment", "--no-progress", "--out", str(out), *extra]
    return CliRunner().invoke(app, args)


def _rebuild(out):
    """The documented recipe: registry arch from student.json, weights with weights_only=True."""
    arch = json.loads((out / "student.json").read_text())
    model = create_student(arch["name"], arch["input_shape"], arch["num_classes"],
                           **{k: v for k, v in arch.items() if k not in ARCH_KEYS})
    if arch["qat_format"]:
        from edgekd.quant import prepare_qat
        from edgekd.targets import NumericFormat

        model = prepare_qat(model, NumericFormat(**arch["qat_format"]), torch.zeros(1, *arch["input_shape"]))
    model.load_state_dict(torch.load(out / "student.pt", map_location="cpu", weights_only=True))
    return model.eval()


@pytest.fixture(scope="module")
def finished(tmp_path_factory, teacher_file):
    out = tmp_path_factory.mktemp("run") / "out"
    result = _distill(out, teacher_file[0])
    assert result.exit_code == 0, result.stderr
    return out, result


def test_cli_distill_writes_student_that_reloads_and_reproduces_accuracy(finished, teacher_file, digits_val):
    out, result = finished
    for name in ("student.pt", "student.json", "distill.json", "summary.json", "preprocess.json", "distill.ckpt"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    history = json.loads((out / "distill.json").read_text())["history"]
    model = _rebuild(out)
    accuracy = evaluate(model, digits_val[0])
    assert accuracy == summary["student"]["val_accuracy"] == history[-1]["val_accuracy"]
    assert accuracy >= 0.85  # 2 epochs of TopKLD from a ~96% teacher: 93% measured
    assert summary["teacher"]["val_accuracy"] == pytest.approx(teacher_file[1])
    assert summary["loss"]["config"]["k"] == 3 and summary["loss"]["config"]["temperature"] == 4.0
    assert set(summary["loss"]["terms"]) == {"topkld", "ce"} and len(history) == 2
    assert summary["student"]["arch"]["widths"] == [8, 16] and summary["resumed_from_epoch"] == 0
    assert "student val top-1" in result.stdout and f"{accuracy * 100:.2f}%" in result.stdout


def test_cli_distill_resume_after_finished_run_does_not_retrain(finished, teacher_file, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished[0], out)  # copy2 keeps the checkpoint's mtime
    stamp = (out / "distill.ckpt").stat().st_mtime_ns
    before = json.loads((out / "summary.json").read_text())
    result = _distill(out, teacher_file[0], "--resume")
    assert result.exit_code == 0, result.stderr
    after = json.loads((out / "summary.json").read_text())
    assert (out / "distill.ckpt").stat().st_mtime_ns == stamp  # no epoch ran, so no checkpoint was saved
    assert after["resumed_from_epoch"] == 2
    assert after["student"]["val_accuracy"] == before["student"]["val_accuracy"]


def test_cli_distill_same_seed_gives_the_same_student(finished, teacher_file, tmp_path):
    torch.manual_seed(12345)  # another process starts from another RNG state; --seed must not depend on it
    result = _distill(tmp_path / "again", teacher_file[0])
    assert result.exit_code == 0, result.stderr
    first, again = (torch.load(d / "student.pt", weights_only=True) for d in (finished[0], tmp_path / "again"))
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)

def test_cli_distill_qat_student_reloads_with_its_quantizers(teacher_file, digits_val, tmp_path):
    from edgekd.quant import is_qat_model

    out = tmp_path / "out"
    result = _distill(out, teacher_file[0], "--target", "x86-cpu-onnxruntime", "--qat")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["student"]["arch"]["qat_format"]["weights"] == "int8"
    model = _rebuild(out)
    assert is_qat_model(model)
    assert evaluate(model, digits_val[0]) == summary["student"]["val_accuracy"] >= 0.8
    assert (out / "distill.qat.ckpt").is_file()
    assert summary["qat"]["teacher"] == DEFAULT_QAT_TEACHER  # --qat-teacher left out


def test_cli_distill_qat_teacher_is_recorded_in_summary(teacher_file, tmp_path):
    out = tmp_path / "out"
    result = _distill(out, teacher_file[0], "--target", "x86-cpu-onnxruntime", "--qat", "--qat-teacher", "both")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["qat"]["teacher"] == "both" and summary["qat"]["self_weight"] == 0.5


def test_cli_distill_trains_and_caches_the_default_teacher_without_teacher(tmp_path):
    import os
    from pathlib import Path

    out = tmp_path / "out"
    args = ["distill", "--dataset", "digits", "--student-opt", "widths=[8,16,32]", "--epochs", "1",
            "--no-augment", "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    teacher = json.loads((out / "summary.json").read_text())["teacher"]
    # trained by this run unless an earlier test of the session cached it
    assert teacher["source"] == "edgekd default, " + ("trained now" if teacher["trained_now"] else "cached")
    assert teacher["val_accuracy"] >= 0.9  # 97% measured
    assert Path(teacher["cache"]).is_file() and Path(os.environ["EDGEKD_CACHE_DIR"]) in Path(teacher["cache"]).parents


def test_cli_distill_loss_without_teacher_reports_none(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["distill", "--dataset", "digits", "--loss", "ce", "--student-opt",
                                      "widths=[8,16,32]", "--epochs", "1", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["teacher"]["val_accuracy"] is None and set(summary["loss"]["terms"]) == {"ce"}

def _pickled_teacher(folder):
    torch.save(TeacherCNN((1, 8, 8), 10, width=8), folder / "pickled.pt")  # a whole pickled module
    (folder / "pickled.json").write_text(json.dumps({"name": "TeacherCNN", "width": 8}))
    return folder / "pickled.pt"


def _wrong_arch_teacher(folder, teacher):
    shutil.copy(teacher, folder / "wrong.pt")
    (folder / "wrong.json").write_text(json.dumps({"name": "resnet"}))
    return folder / "wrong.pt"


BAD = {
    "unknown loss": (["--loss", "nope"], "--loss:", "topkld"),
    "unknown loss option": (["--loss-opt", "kk=3"], "--loss-opt", "temperature"),
    "loss option without value": (["--loss-opt", "k"], "--loss-opt", "KEY=VALUE"),
    "loss option of wrong type": (["--loss-opt", "temperature=hot"], "--loss-opt", "a number"),
    "unknown student": (["--student", "nope"], "--student:", "mobilenetv2, resnet"),
    "unknown student option": (["--student-opt", "bogus=1"], "--student-opt", "widths"),
    "unknown dataset": (["--dataset", "nope"], "--dataset:", "digits, fashion-mnist, folder, mnist5k"),
    "missing image folder": (["--dataset", "folder", "--data-dir", "{tmp}/none"], "--data-dir", "not found"),
    "qat without target": (["--qat"], "--target", "--qat"),
    "unknown qat teacher": (["--target", "x86-cpu-onnxruntime", "--qat", "--qat-teacher", "nope"], "qat_teacher",
                            "self, teacher, both"),
    "qat teacher without qat": (["--qat-teacher", "self"], "qat_teacher", "qat=True"),
    "unknown target": (["--target", "nope", "--qat"], "--target:", "x86-cpu-onnxruntime"),
    "resume without checkpoint": (["--resume"], "--resume:", "no checkpoint"),
    "missing teacher": (["--teacher", "{tmp}/none.pt"], "--teacher:", "not found"),
    "pickled teacher": (["--teacher", "{pickled}"], "--teacher:", "weights_only=True"),
    "teacher weights of another arch": (["--teacher", "{wrong}"], "--teacher:", "does not fit"),
    "unknown device": (["--device", "gpu"], "--device", "cpu, cuda"),
    **({} if torch.cuda.is_available() else {"cuda without a GPU": (["--device", "cuda"], "--device",
                                                                    "no CUDA device")}),
}


@pytest.mark.parametrize("case", list(BAD))
def test_cli_distill_bad_input_exits_2_naming_the_flag_and_writes_nothing(case, teacher_file, tmp_path):
    extra, flag, hint = BAD[case]
    names = {"tmp": tmp_path, "pickled": "", "wrong": ""}
    if "{pickled}" in extra:
        names["pickled"] = _pickled_teacher(tmp_path)
    if "{wrong}" in extra:
        names["wrong"] = _wrong_arch_teacher(tmp_path, teacher_file[0])
    out = tmp_path / "out"
    result = _distill(out, teacher_file[0], *[a.format(**names) for a in extra])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and flag in lines[0] and hint in lines[0], lines
    assert not out.exists()
