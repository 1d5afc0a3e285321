"""A teacher or student near chance accuracy is warned about and recorded in report["warnings"]."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from edgekd.chance import near_chance_warnings, threshold


def chance_warnings(teacher, student, classes=10, train=5000, epochs=30, teacher_epochs=None):
    return near_chance_warnings(classes, train, {"teacher": teacher, "student": student},
                                {"teacher": teacher_epochs, "student": epochs})


def test_chance_warnings_flags_a_20_percent_teacher_on_10_classes_only():
    found = chance_warnings(teacher=0.20, student=0.95)
    assert [(w["kind"], w["model"]) for w in found] == [("near_chance", "teacher")]
    assert found[0]["chance"] == pytest.approx(0.1) and found[0]["threshold"] == pytest.approx(0.2)


@pytest.mark.parametrize("classes, accuracy, warned", [(10, 0.2, True), (10, 0.201, False), (2, 0.5625, True),
                                                       (2, 0.6, False), (100, 0.02, True), (100, 0.03, False)])
def test_chance_warnings_threshold_is_twice_chance_at_most_an_eighth_above_it(classes, accuracy, warned):
    assert threshold(classes) == pytest.approx(min(2 / classes, 1 / classes + (1 - 1 / classes) / 8))
    assert bool(chance_warnings(teacher=0.99, student=accuracy, classes=classes)) is warned


def test_chance_warnings_names_the_causes_the_report_shows():
    found = {w["model"]: w for w in chance_warnings(teacher=0.11, student=0.1, train=200, epochs=3,
                                                    teacher_epochs=2)}
    assert found["student"]["causes"] == ["too_little_data", "too_few_epochs", "teacher_near_chance", "preprocessing"]
    assert found["teacher"]["causes"] == ["too_little_data", "too_few_epochs", "preprocessing"]
    healthy_data = chance_warnings(teacher=0.99, student=0.1)[0]
    assert healthy_data["causes"] == ["preprocessing"]


def test_build_with_an_untrained_teacher_on_random_labels_records_near_chance(tmp_path, caplog):
    import torch

    import edgekd
    from edgekd.models import TeacherCNN

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 4, 400)  # labels unrelated to the images: nothing to learn
    torch.manual_seed(0)
    teacher = TeacherCNN((1, 8, 8), 4, width=8).eval()
    with caplog.at_level(logging.WARNING, logger="edgekd"):
        result = edgekd.build(teacher, train=(x, y), val_fraction=0.5, out_dir=tmp_path, epochs=1, search=False,
                              student={"name": "resnet", "widths": [8, 16], "depths": [1, 1]}, progress=False,
                              latency_runs=10)
    written = json.loads((result.out_dir / "report.json").read_text())
    for report in (result.report, written):
        warned = {w["model"]: w for w in report["warnings"] if w["kind"] == "near_chance"}
        assert set(warned) == {"teacher", "student"}
        assert warned["student"]["accuracy"] == report["student"]["accuracy"] <= threshold(4)
    messages = [w["message"] for w in warned.values()]
    logged = [m for r in caplog.records if r.levelno == logging.WARNING for m in messages if m in r.getMessage()]
    assert sorted(logged) == sorted(messages)  # each recorded warning logged once: the teacher's, the student's
