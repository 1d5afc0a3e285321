"""`edgekd build` and `edgekd.build` on the user's own image folder (DATA_DIR/<class>/<image>)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgekd.cli import app

CLASSES = ("blob", "horizontal", "vertical")  # sorted: their label order


def write_png_folder(root, per_class: int = 40, size: int = 16, seed: int = 0):
    """Grayscale PNGs of three patterns a small CNN tells apart in a few epochs: a bright centre
    square, horizontal stripes, vertical stripes, each shifted at random and with pixel noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = np.arange(size)[:, None] * np.ones((1, size))
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            phase = rng.integers(0, 4)
            if name == "horizontal":
                img = ((rows + phase) // 2 % 2) * 200.0
            elif name == "vertical":
                img = ((rows.T + phase) // 2 % 2) * 200.0
            else:
                img = np.zeros((size, size))
                c = size // 2 + phase - 2
                img[c - 4:c + 4, c - 4:c + 4] = 220.0
            img = np.clip(img + rng.normal(0, 25, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img, mode="L").save(root / name / f"{i:03d}.png")
    return root


def test_cli_build_data_dir_builds_validates_and_labels_the_folder_classes(tmp_path):
    data = write_png_folder(tmp_path / "shapes")
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "edgekd.cli", "build", "--data-dir", str(data), "--image-size", "16",
                           "--channels", "1", "--epochs", "30", "--no-search", "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = out / "x86-cpu-onnxruntime"
    report = json.loads((folder / "report.json").read_text())
    spec = json.loads((folder / "preprocess.json").read_text())
    assert spec["labels"] == list(CLASSES) and spec["input_shape"] == [1, 16, 16] and spec["color"] == "gray"
    assert report["dataset"]["train"] + report["dataset"]["val"] == 3 * 40
    assert report["dataset"]["val"] == 24  # the default --val-fraction 0.2, stratified
    # three easy patterns: the compiled int8 student is far above chance (1/3) on held-out images
    assert report["artifact"]["accuracy"] >= 0.9
    assert report["teacher"]["accuracy"] >= 0.9
    assert not [w for w in report.get("warnings", []) if w["kind"] == "near_chance"]


def test_build_python_val_dir_validates_on_the_val_folder(tmp_path):
    from edgekd.stages import prepare_data

    train = write_png_folder(tmp_path / "train", per_class=6)
    val = write_png_folder(tmp_path / "val", per_class=2, seed=1)
    data = prepare_data(None, None, None, None, 0.2, 0, data_dir=train, val_dir=val, image_size=(12, 10),
                         channels=3)
    assert len(data.train) == 18 and len(data.val) == 6  # nothing held out of train when a val folder is given
    assert data.train.input_shape == (3, 12, 10) and data.spec.labels == CLASSES
    assert sorted(data.val.y.tolist()) == [0, 0, 1, 1, 2, 2]


def test_build_python_val_dir_rejects_a_class_the_training_folder_lacks(tmp_path):
    from edgekd.errors import DataError
    from edgekd.stages import prepare_data

    train = write_png_folder(tmp_path / "train", per_class=2)
    val = write_png_folder(tmp_path / "val", per_class=1)
    (val / "zebra").mkdir()
    with pytest.raises(DataError, match="zebra"):
        prepare_data(None, None, None, None, 0.2, 0, data_dir=train, val_dir=val)


BAD = {
    "folder without data dir": (["--dataset", "folder"], "--data-dir"),
    "val dir without data dir": (["--val-dir", "{tmp}"], "--val-dir"),
    "bad image size": (["--data-dir", "{data}", "--image-size", "big"], "--image-size"),
    "image size too small": (["--data-dir", "{data}", "--image-size", "2x2"], "--image-size"),
    "bad channels": (["--data-dir", "{data}", "--channels", "2"], "--channels"),
    "missing folder": (["--data-dir", "{tmp}/none"], "not found"),
    "dataset reading no folder": (["--dataset", "digits", "--data-dir", "{data}"], "--data-dir"),
    "unknown device": (["--device", "gpu"], "--device"),
    **({} if torch.cuda.is_available() else {"cuda without a GPU": (["--device", "cuda"], "--device")}),
}


@pytest.mark.parametrize("case", list(BAD))
def test_cli_build_bad_data_option_exits_2_with_one_line(case, tmp_path):
    extra, flag = BAD[case]
    data = write_png_folder(tmp_path / "d", per_class=1)
    out = tmp_path / "out"
    args = ["build", "--out", str(out), "--no-search", *[a.format(tmp=tmp_path, data=data) for a in extra]]
    result = CliRunner().invoke(app, args)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and flag in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("kwargs, names", [
    ({"dataset": "folder"}, "data_dir"),
    ({"data_dir": "{tmp}/none"}, "data_dir"),
    ({"data_dir": "{data}", "val_dir": "{tmp}/none"}, "val_dir"),
    ({"data_dir": "{data}", "channels": 2}, "channels"),
    ({"dataset": "digits", "image_size": 16}, "image_size"),
])
def test_build_python_bad_data_argument_raises_before_writing(kwargs, names, tmp_path):
    import edgekd
    from edgekd.errors import DataError

    data = write_png_folder(tmp_path / "d", per_class=1)
    kwargs = {k: v.format(tmp=tmp_path, data=data) if isinstance(v, str) else v for k, v in kwargs.items()}
    out = tmp_path / "out"
    with pytest.raises(DataError, match=names):
        edgekd.build(out_dir=out, search=False, **kwargs)
    with pytest.raises(DataError, match=names):
        edgekd.build_all(targets=["x86-cpu-onnxruntime"], out_dir=out, search=False, **kwargs)
    assert not out.exists()


def test_cli_build_ctrl_c_exits_130_naming_the_epoch_to_resume_from(tmp_path):
    import re
    import signal
    import time

    import torch

    data = write_png_folder(tmp_path / "shapes", per_class=20)
    out = tmp_path / "out"
    epochs = 5000
    # a test run started in the background (`cmd &` without job control) inherits SIGINT as ignored, and a
    # child then never raises KeyboardInterrupt: give the child SIGINT's default (a handler resets on exec)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "edgekd.cli", "build", "--data-dir", str(data), "--image-size",
                                 "16", "--channels", "1", "--epochs", str(epochs), "--no-search", "--out", str(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        signal.signal(signal.SIGINT, inherited)
    ckpt = out / "_work" / "x86-cpu-onnxruntime" / "distill.ckpt"
    deadline = time.time() + 240
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()[-2000:]
    time.sleep(1.0)
    done = torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"]  # finished before the signal
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    match = re.search(r"at epoch (\d+) of (\d+)\b.*--resume", err)
    assert match, err[-2000:]
    assert int(match.group(1)) > done and int(match.group(2)) == epochs
