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
