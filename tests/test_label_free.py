"""Label-free distillation: an unlabeled image folder (DATA_DIR/<image>) labelled by the user's teacher."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from edgekd.errors import DataError
from tests.test_cli_build_folder import CLASSES, write_png_folder


def unlabeled_copy(labelled, dest):
    """The labelled folder's images, flattened into one folder without class sub-folders."""
    dest.mkdir(parents=True)
    for name in CLASSES:
        for file in sorted((labelled / name).iterdir()):
            shutil.copy(file, dest / f"{name}-{file.name}")
    return dest


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """(labelled folder, the same images unlabeled, a teacher trained on the labels, at 16x16 gray)."""
    from edgekd.distill.losses import CE
    from edgekd.distill.trainer import TrainConfig, fit
    from edgekd.models import TeacherCNN
    from edgekd.stages import prepare_data

    root = tmp_path_factory.mktemp("label_free")
    labelled = write_png_folder(root / "labelled", per_class=40)
    data = prepare_data(None, None, None, None, 0.2, 0, data_dir=labelled, image_size=16, channels=1)
    torch.manual_seed(0)
    teacher = TeacherCNN((1, 16, 16), 3, width=8)
    fit(teacher, data.train, None, CE(), None, TrainConfig(epochs=15, batch_size=32, lr=3e-3, progress=False))
    return labelled, unlabeled_copy(labelled, root / "unlabeled"), teacher.eval()


def test_an_unlabeled_folder_is_labelled_by_the_teacher_and_the_logits_cached(shapes, tmp_path, monkeypatch):
    from edgekd.stages import label_with_teacher, prepare_data
    from edgekd.stages.teacher import predict

    _, unlabeled, teacher = shapes
    raw = prepare_data(None, None, None, None, 0.2, 0, data_dir=unlabeled, image_size=16, channels=1)
    assert raw.labels_from == "teacher" and (raw.train.y < 0).all()  # placeholders until the teacher speaks
    data = label_with_teacher(raw, teacher, tmp_path / "cache")
    expected = predict(teacher, raw.train.x).argmax(1)
    assert torch.equal(data.train.y, expected) and data.spec.labels == ("0", "1", "2")
    assert torch.equal(data.val.y, predict(teacher, raw.val.x).argmax(1))
    cached = list((tmp_path / "cache").glob("teacher-logits-*.npz"))
    assert len(cached) == 1
    # a second pass reads the cache: the teacher does not run again
    monkeypatch.setattr("edgekd.stages.teacher.predict", _refuse)
    again = label_with_teacher(raw, teacher, tmp_path / "cache")
    assert torch.equal(again.train.y, expected)


def _refuse(*_args, **_kwargs):
    raise AssertionError("the teacher ran although its logits were cached")


def test_an_unlabeled_folder_without_a_teacher_is_bad_input_before_training(shapes, tmp_path):
    import edgekd

    _, unlabeled, _ = shapes
    with pytest.raises(DataError, match="data_dir: .*no class sub-folders.*teacher"):
        edgekd.build(None, data_dir=unlabeled, image_size=16, channels=1, out_dir=tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "x86-cpu-onnxruntime").exists()


def test_a_labelled_val_folder_keeps_its_labels_for_accuracy(shapes, tmp_path):
    from edgekd.stages import label_with_teacher, prepare_data

    labelled, unlabeled, teacher = shapes
    raw = prepare_data(None, None, None, None, 0.2, 0, data_dir=unlabeled, val_dir=labelled, image_size=16,
                       channels=1)
    data = label_with_teacher(raw, teacher, None)
    assert data.spec.labels == CLASSES and sorted(set(data.val.y.tolist())) == [0, 1, 2]
    assert len(data.val) == 120 and len(data.train) == 120


def test_cli_build_distills_an_unlabeled_folder_from_a_teacher_file(shapes, tmp_path):
    _, unlabeled, teacher = shapes
    weights, arch = tmp_path / "teacher.pt", tmp_path / "teacher.json"
    torch.save(teacher.state_dict(), weights)
    arch.write_text(json.dumps({"name": "TeacherCNN", "width": 8, "num_classes": 3}))
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "edgekd.cli", "build", "--data-dir", str(unlabeled),
                           "--image-size", "16", "--channels", "1", "--teacher", str(weights), "--epochs", "25",
                           "--no-search", "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    report = json.loads((out / "x86-cpu-onnxruntime" / "report.json").read_text())
    assert report["dataset"]["labels"] == "teacher" and report["dataset"]["classes"] == ["0", "1", "2"]
    assert report["teacher"]["accuracy"] == 1.0  # its own labels: accuracy here means agreement with it
    assert report["artifact"]["accuracy"] >= 0.9  # the int8 student agrees with the teacher on held-out images
    assert len(list((out / "cache").glob("teacher-logits-*.npz"))) == 1


def test_cli_build_teacher_arch_without_num_classes_for_an_unlabeled_folder_exits_2(shapes, tmp_path):
    from typer.testing import CliRunner

    from edgekd.cli import app

    _, unlabeled, teacher = shapes
    weights = tmp_path / "teacher.pt"
    torch.save(teacher.state_dict(), weights)
    weights.with_suffix(".json").write_text(json.dumps({"name": "TeacherCNN", "width": 8}))
    result = CliRunner().invoke(app, ["build", "--data-dir", str(unlabeled), "--image-size", "16", "--channels", "1",
                                      "--teacher", str(weights), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "--teacher-arch" in result.output and "num_classes" in result.output
    assert not (tmp_path / "out").exists()


def test_a_searched_student_has_the_teachers_classes_even_where_its_labels_never_use_the_last(shapes):
    from edgekd.search.build import search_student
    from edgekd.stages import prepare_data
    from edgekd.targets import load_target

    labelled, _, teacher = shapes
    data = prepare_data(None, None, None, None, 0.2, 0, data_dir=labelled, image_size=16, channels=1)
    keep = data.train.y < 2  # a teacher's labels on unlabeled images need not include every class
    train = type(data.train)(data.train.x[keep], data.train.y[keep])
    assert train.num_classes == 2
    student = search_student(teacher, train, load_target("x86-cpu-onnxruntime"), num_classes=3)
    with torch.no_grad():
        assert student.eval()(train.x[:2]).shape == (2, 3)

