"""The real `edgekd` process: bad input is one line on stderr and exit 2; --debug adds the traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgekd import outdir


def _edgekd(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "edgekd.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow
def test_cli_process_out_is_file_exits_2_in_one_line(tmp_path):
    out = tmp_path / "out"
    out.write_text("mine")
    proc = _edgekd("build", "--out", str(out), "--epochs", "1", "--no-search")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and str(out) in proc.stderr
    assert out.read_text() == "mine"


@pytest.mark.slow
def test_cli_process_debug_shows_traceback(tmp_path):
    out = tmp_path / "out"
    out.write_text("mine")
    proc = _edgekd("--debug", "build", "--out", str(out), "--epochs", "1", "--no-search", "--calib-size", "-5")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.slow
def test_cli_process_locked_out_exits_2_naming_holder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    lock = outdir.OutputLock(out).acquire()
    try:
        proc = _edgekd("build", "--out", str(out), "--epochs", "1", "--no-search")
    finally:
        lock.release()
    assert proc.returncode == 2
    import os

    assert str(os.getpid()) in proc.stderr and "Traceback" not in proc.stderr
