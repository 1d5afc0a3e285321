"""The default teacher says whether this run trained it or loaded it from the cache, and says so before training."""

from __future__ import annotations

import logging
import os

import pytest


@pytest.fixture()
def tiny_folder_data(tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_cli_build_folder import write_png_folder

    from edgekd.stages import prepare_data

    monkeypatch.setenv("EDGEKD_CACHE_DIR", str(tmp_path / "cache"))  # a cold cache for this test only
    data_dir = write_png_folder(tmp_path / "shapes", per_class=8, size=8)
    return prepare_data(None, None, None, None, 0.25, 0, data_dir=data_dir, image_size=8, channels=1)


def test_default_teacher_is_trained_now_once_then_cached(tiny_folder_data, caplog):
    from edgekd.stages.teacher import TEACHER_RECIPE, prepare_teacher

    with caplog.at_level(logging.INFO, logger="edgekd.pipeline"):
        _, first = prepare_teacher(None, tiny_folder_data, 0, progress=False)
    announced = [r for r in caplog.records if r.name == "edgekd.stages.teacher" and TEACHER_RECIPE["epochs"] in r.args]
    assert len(announced) == 1
    # announced before training: the cache file is written only after it
    assert announced[0].created <= os.path.getmtime(first["cache"])
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="edgekd.pipeline"):
        _, second = prepare_teacher(None, tiny_folder_data, 0, progress=False)
    assert first["trained_now"] is True and first["source"].endswith("trained now")
    assert second["trained_now"] is False and second["source"].endswith("cached")
    assert second["cache"] == first["cache"] and second["val_accuracy"] == first["val_accuracy"]
    assert not [r for r in caplog.records if r.name == "edgekd.stages.teacher" and TEACHER_RECIPE["epochs"] in r.args]


def test_user_teacher_is_not_labelled_trained_now(tiny_folder_data):
    from edgekd.models import default_teacher
    from edgekd.stages import prepare_teacher

    teacher = default_teacher(tiny_folder_data.train.input_shape, tiny_folder_data.num_classes)
    _, info = prepare_teacher(teacher, tiny_folder_data, 0, progress=False)
    assert info["source"] == "user" and info["trained_now"] is False
