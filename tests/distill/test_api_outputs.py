"""``edgekd.distill(..., out_dir=...)`` writes what ``edgekd distill`` writes: student.json and summary.json."""

from __future__ import annotations

import json

import pytest
import torch

import edgekd
from edgekd.distill import evaluate
from edgekd.models import create_student
from edgekd.quant import prepare_qat
from edgekd.targets import NumericFormat

ARCH_KEYS = ("schema", "name", "input_shape", "num_classes", "qat_format")


def _rebuild(out):
    arch = json.loads((out / "student.json").read_text())
    model = create_student(arch["name"], arch["input_shape"], arch["num_classes"],
                           **{k: v for k, v in arch.items() if k not in ARCH_KEYS})
    if arch["qat_format"]:
        model = prepare_qat(model, NumericFormat(**arch["qat_format"]), torch.zeros(1, *arch["input_shape"]))
    model.load_state_dict(torch.load(out / "student.pt", map_location="cpu", weights_only=True))
    return model.eval()


@pytest.mark.parametrize("qat", [False, True], ids=["float", "qat"])
def test_distill_out_dir_writes_student_json_and_summary_like_the_cli(digits, digits_teacher, tmp_path, qat):
    train, val, _ = digits
    torch.manual_seed(0)
    student = create_student("resnet", (1, 8, 8), 10, widths=(8, 8, 8))
    extra = {"target": "x86-cpu-onnxruntime", "qat": True, "qat_epochs": 1, "qat_teacher": "self"} if qat else {}
    model = edgekd.distill(digits_teacher, student, train, val, loss=edgekd.losses.KD(), epochs=2, lr=5e-3,
                           progress=False, out_dir=tmp_path, **extra)
    summary = json.loads((tmp_path / "summary.json").read_text())
    arch = json.loads((tmp_path / "student.json").read_text())
    assert arch == summary["student"]["arch"] and arch["num_classes"] == 10 and arch["input_shape"] == [1, 8, 8]
    rebuilt = _rebuild(tmp_path)
    assert evaluate(rebuilt, val) == summary["student"]["val_accuracy"] == evaluate(model, val)
    assert summary["teacher"]["val_accuracy"] == evaluate(digits_teacher, val)
    assert (summary["train_size"], summary["val_size"], summary["epochs"]) == (len(train), len(val), 2)
    assert set(summary["loss"]["terms"]) == {"kd", "ce"} and summary["loss"]["name"] == "kd"
    if qat:
        assert arch["qat_format"]["weights"] == "int8" and summary["qat"]["teacher"] == "self"
    else:
        assert arch["qat_format"] is None and summary["qat"] is None
