"""``compile(..., val=...)`` gates the artifact; ``validate`` returns the gate verdict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch import nn

import edgekd
from edgekd.backends.base import Artifact
from edgekd.targets import load_target
from edgekd.validate.conformance import with_precision
from edgekd.validate.gates import GateVerdict, wilson_interval


def _strict(target: str):
    """The target with a gate no int8 build is expected to meet: agreement 1.0, no accuracy drop."""
    t = load_target(target)
    return t.model_copy(update={"gate": t.gate.model_copy(update={"max_accuracy_drop": 0.0, "min_agreement": 1.0})})


def _data(digits):
    train, val, _ = digits
    return (train.x.numpy(), train.y.numpy()), (val.x.numpy(), val.y.numpy())


def test_compile_with_val_fp32_passes_and_records_the_verdict(digits_teacher, digits, tmp_path):
    calib, val = _data(digits)
    artifact = edgekd.compile(digits_teacher, with_precision("x86-cpu-onnxruntime", "fp32"), calib, tmp_path, val=val)
    verdict = artifact.verdict
    assert isinstance(verdict, GateVerdict)
    assert verdict.passed and verdict.status == "passed"
    assert verdict.agreement == 1.0 and verdict.samples == len(val[0])
    assert verdict.accuracy_drop_points == pytest.approx(0.0, abs=1e-9)
    lo, hi = verdict.agreement_ci95
    assert lo < 1.0 and hi == 1.0
    saved = json.loads((artifact.folder / "artifact.json").read_text())["details"]["gate"]
    assert saved["passed"] is True and saved["samples"] == len(val[0])
    assert Artifact.read(artifact.folder).details["gate"] == verdict.to_json()


def test_compile_missed_gate_tries_float_fallback_and_reports_it(digits_teacher, digits, tmp_path):
    calib, val = _data(digits)
    x, y = calib
    wild = (np.concatenate([x, 40.0 * x[:4]]), np.concatenate([y, y[:4]]))  # outliers blow the int8 ranges up
    artifact = edgekd.compile(digits_teacher, _strict("x86-cpu-onnxruntime"), wild, tmp_path, val=val,
                              calib_size=len(wild[0]))
    verdict = artifact.verdict
    assert verdict.recovery is not None and verdict.recovery["attempted"] is True
    assert verdict.recovery["attempts"]
    assert verdict.passed == (verdict.agreement >= 1.0 and verdict.accuracy_drop_points <= 0.0)
    if verdict.recovery["passed"]:
        assert artifact.details["kept_float"]


def test_compile_missed_gate_without_fallback_says_why(digits_teacher, digits, tmp_path):
    calib, val = _data(digits)
    x, y = calib
    wild = (np.concatenate([x, 40.0 * x[:4]]), np.concatenate([y, y[:4]]))
    strict = _strict("x86-cpu-onnxruntime")
    no_fallback = strict.model_copy(update={"gate": strict.gate.model_copy(update={"keep_sensitive_float": False})})
    artifact = edgekd.compile(digits_teacher, no_fallback, wild, tmp_path, val=val, calib_size=len(wild[0]))
    verdict = artifact.verdict
    assert verdict.passed is False and verdict.status == "failed"
    assert verdict.recovery == {"attempted": False, "reason": verdict.recovery["reason"]}
    assert "keep_sensitive_float" in verdict.recovery["reason"]


def test_compile_missed_gate_on_executorch_keeps_sensitive_layers_float_in_the_pte(digits_teacher, digits, tmp_path):
    pytest.importorskip("executorch.exir")
    calib, val = _data(digits)
    x, y = calib
    wild = (np.concatenate([x[:200], 40.0 * x[:4]]), np.concatenate([y[:200], y[:4]]))  # few: PT2E runs at batch 1
    artifact = edgekd.compile(digits_teacher, _strict("android-executorch-xnnpack"), wild, tmp_path, val=val,
                              calib_size=len(wild[0]))
    verdict = artifact.verdict
    assert verdict.recovery is not None and verdict.recovery["attempted"] is True
    kept = verdict.recovery["kept_float"]
    assert kept and kept == verdict.recovery["attempts"][-1]["kept_float"]
    layers = {name for name, m in digits_teacher.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}
    assert set(kept) <= layers  # module names of the teacher's weighted layers
    assert not set(kept) & set(artifact.details["quantized_layers"])  # float in the rebuilt graph, not only listed
    assert set(artifact.details["quantized_layers"]) == layers - set(kept)
    out = edgekd.load(artifact.path)(val[0][:8])
    assert out.shape == (8, 10)
def test_compile_val_as_bare_array_gates_agreement_with_fp32(digits_teacher, digits, tmp_path):
    calib, val = _data(digits)
    artifact = edgekd.compile(digits_teacher, "x86-cpu-onnxruntime", calib, tmp_path, val=val[0])
    verdict = artifact.verdict
    drop = verdict.accuracy_drop_points
    assert drop == pytest.approx((1.0 - verdict.agreement) * 100.0)  # labels = fp32's predictions
    assert verdict.passed == (drop <= load_target("x86-cpu-onnxruntime").gate.max_accuracy_drop)


def test_validate_returns_gate_and_keeps_old_fields(digits_teacher, digits, tmp_path):
    calib, val = _data(digits)
    artifact = edgekd.compile(digits_teacher, "x86-cpu-onnxruntime", calib, tmp_path)
    report = edgekd.validate(artifact, digits_teacher, val, measure_latency=False)
    for key in ("accuracy", "agreement_teacher", "kl_teacher", "cosine_teacher", "size_bytes", "precision"):
        assert key in report["artifact"]
    gate = report["gate"]
    assert gate["target"] == "x86-cpu-onnxruntime" and gate["samples"] == len(val[0])
    assert gate["agreement"] == report["artifact"]["agreement_teacher"]
    assert report["samples_available"] == len(val[0])


def test_validate_samples_caps_and_widens_the_interval(digits_teacher, digits, tmp_path):
    calib, val = _data(digits)
    artifact = edgekd.compile(digits_teacher, "x86-cpu-onnxruntime", calib, tmp_path)
    full = edgekd.validate(artifact, digits_teacher, val, measure_latency=False)["gate"]
    capped = edgekd.validate(artifact, digits_teacher, val, measure_latency=False, validate_samples=50)
    assert capped["samples"] == 50 and capped["samples_available"] == len(val[0])
    width = lambda g: g["agreement_ci95"][1] - g["agreement_ci95"][0]  # noqa: E731
    assert capped["gate"]["samples_available"] == len(val[0])
    assert width(capped["gate"]) > width(full)


def test_wilson_interval_matches_reference_values():
    lo, hi = wilson_interval(190, 200)
    assert lo == pytest.approx(0.9104, abs=5e-4) and hi == pytest.approx(0.9726, abs=5e-4)
    lo, hi = wilson_interval(200, 200)
    assert hi == 1.0 and lo == pytest.approx(0.9812, abs=5e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
