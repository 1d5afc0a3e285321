"""A build killed during distillation and started again with --resume continues from its checkpoint."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest


def _build(out, *extra):
    cmd = [sys.executable, "-m", "edgekd.cli", "build", "--dataset", "digits", "--epochs", "40", "--out", str(out),
           *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_cli_build_resumes_after_kill(tmp_path):
    ckpt = tmp_path / "_work" / "x86-cpu-onnxruntime" / "distill.ckpt"
    proc = _build(tmp_path)
    deadline = time.time() + 240
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    if proc.poll() is not None:
        pytest.fail(f"build ended before its first checkpoint: {proc.stderr.read()[-2000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "x86-cpu-onnxruntime" / "report.json").exists()

    resumed = _build(tmp_path, "--resume")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode in (0, 1), err[-2000:]  # 1 = gate failed, still a finished build
    assert (tmp_path / "x86-cpu-onnxruntime" / "report.json").exists(), err[-3000:]
    report = json.loads((tmp_path / "x86-cpu-onnxruntime" / "report.json").read_text())
    assert report["distillation"]["resumed_from_epoch"] >= 1
    assert len(report["distillation"]["history"]) == 40
