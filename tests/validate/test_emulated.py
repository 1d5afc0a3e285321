"""Emulated runtimes: validation capped at ``validate_samples``, run in chunks with an estimated time."""

from __future__ import annotations

import logging

import numpy as np

import edgekd
from edgekd.backends.base import get_backend
from edgekd.validate import EMULATED_VALIDATE_SAMPLES
from edgekd.validate.progress import run_with_progress


def test_run_with_progress_chunks_and_estimates_time(caplog):
    calls = []

    def runner(x):
        calls.append(len(x))
        return x.reshape(len(x), -1)[:, :3] * 2.0

    x = np.random.default_rng(0).standard_normal((21, 1, 2, 2)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="edgekd.validate.progress"):
        out = run_with_progress(runner, x, True, "emulator", chunk=8)
    assert calls == [8, 8, 5]
    np.testing.assert_array_equal(out, x.reshape(21, -1)[:, :3] * 2.0)
    record = next(r for r in caplog.records if r.name == "edgekd.validate.progress")
    per_sample, total, n = record.args[1], record.args[2], record.args[3]
    assert n == 21 and per_sample >= 0 and abs(total - per_sample * 21) < 1e-9


def test_validate_caps_an_emulated_backend_and_reports_interval(digits_teacher, digits, tmp_path, monkeypatch):
    train, val, _ = digits
    artifact = edgekd.compile(digits_teacher, "x86-cpu-onnxruntime", (train.x.numpy(), train.y.numpy()), tmp_path)
    monkeypatch.setattr(type(get_backend("onnxruntime")), "emulated", True, raising=False)
    report = edgekd.validate(artifact, digits_teacher, val, measure_latency=False, progress=False)
    assert len(val) > EMULATED_VALIDATE_SAMPLES
    assert report["samples"] == EMULATED_VALIDATE_SAMPLES and report["samples_available"] == len(val)
    assert report["artifact"]["emulated"] is True
    gate = report["gate"]
    lo, hi = gate["agreement_ci95"]
    assert lo <= gate["agreement"] <= hi and gate["samples_available"] == len(val)
    uncapped = edgekd.validate(artifact, digits_teacher, val, measure_latency=False, progress=False,
                               validate_samples=0)
    assert uncapped["samples"] == len(val)
