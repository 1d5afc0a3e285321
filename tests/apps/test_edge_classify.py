"""The edge CLI app: a folder of images and a raw frame stream, in-process and as a real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from apps_helpers import ROOT


@pytest.fixture(scope="module")
def labelled_folder(digit_pngs, tmp_path_factory):
    """digits as <label>/<name>.png, plus one broken file that must be skipped, not fatal."""
    paths, labels = digit_pngs
    root = tmp_path_factory.mktemp("classify-folder")
    for path, label in zip(paths, labels):
        (root / str(label)).mkdir(exist_ok=True)
        (root / str(label) / path.name).write_bytes(path.read_bytes())
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def _reference(artifact_path, images):
    import edgekd
    from edgekd.data.spec import PreprocessSpec

    spec = PreprocessSpec.load(artifact_path.parent / "preprocess.json")
    x = np.concatenate([spec.from_image(im) for im in images])
    return [spec.labels[i] for i in edgekd.load(artifact_path)(x).argmax(1)]


def test_edge_classify_folder_counts_classes_and_accuracy(digits_artifact, labelled_folder, digit_pngs, capsys,
                                                          tmp_path):
    from edge_classify.__main__ import main

    paths, labels = digit_pngs
    expected = _reference(digits_artifact.artifact_path, [Image.open(p) for p in paths])
    out_json = tmp_path / "summary.json"
    assert main([str(digits_artifact.artifact_path.parent), str(labelled_folder), "--batch", "7",
                 "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    summary = json.loads(out_json.read_text())
    assert summary["images"] == 40 and summary["counts"] == dict(sorted(Counter(expected).items()))
    assert summary["accuracy"] == pytest.approx(np.mean(np.asarray(expected) == labels.astype(str)))
    assert [s["name"] for s in summary["skipped"]] == ["broken.png"]
    assert "images/s" in text and "skipped broken.png" in text and summary["images_per_second"] > 0


def test_edge_classify_frames_match_in_process_predictions(digits_artifact, digit_pngs, tmp_path):
    from edge_classify import Classifier, raw_frames

    frames = [np.asarray(Image.open(p).resize((16, 16), Image.Resampling.NEAREST)) for p in digit_pngs[0][:12]]
    stream = tmp_path / "frames.gray"
    stream.write_bytes(b"".join(f.tobytes() for f in frames) + b"\x00" * 100)  # plus a truncated frame
    classifier = Classifier(digits_artifact.artifact_path)
    with stream.open("rb") as fh:
        summary = classifier.classify(raw_frames(fh, 16, 16, "gray"), batch_size=5)
    assert summary.images == 12
    assert [p[1] for p in summary.predictions] == _reference(
        digits_artifact.artifact_path, [Image.fromarray(f, "L") for f in frames])
    assert summary.skipped == [("frame 12", "truncated frame: 100 of 256 bytes")]


def test_edge_classify_command_reads_frames_from_stdin(digits_artifact, digit_pngs):
    frames = [np.asarray(Image.open(p).convert("RGB")) for p in digit_pngs[0][:20]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "apps" / "edge-classify"),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "edge_classify", str(digits_artifact.artifact_path.parent),
                           "--frames", "-", "--frame-size", "8x8", "--max-frames", "15"],
                          input=b"".join(f.tobytes() for f in frames), capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode()
    assert out.startswith("15 images in") and "images/s" in out
    assert sum(int(line.split()[-1]) for line in out.splitlines()[1:]) == 15  # per-class counts add up
