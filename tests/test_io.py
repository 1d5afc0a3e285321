"""Atomic writes: the reader never sees a half-written file, and artifacts get the usual permissions."""

import os
import stat

import pytest

from edgekd._io import write_bytes, write_json


def test_written_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_json(tmp_path / "report.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by the server or app that ships it


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_bytes(tmp_path / "model.onnx", b"old")

    def broken(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    from edgekd._io import atomic_write

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_compiled_artifact_folder_follows_the_umask_not_mkdtemps_0700(tmp_path, digits):
    import torch
    from torch import nn

    import edgekd

    train, _, _ = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 10)).eval()
    old = os.umask(0o022)
    try:
        artifact = edgekd.compile(model, "x86-cpu-onnxruntime", train.numpy(), tmp_path / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE(artifact.folder.stat().st_mode) == 0o755  # the edge server's user can enter it
