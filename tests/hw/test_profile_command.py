"""`edgekd profile`: shows the target's latency model and times an artifact in its runtime."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from edgekd.cli import app
from edgekd.hw.model import profile_path
from hw_helpers import write_target


@pytest.mark.parametrize("target", ["x86-cpu-onnxruntime", "android-executorch-xnnpack"])  # per-kernel and linear
def test_profile_command_shows_fitted_model(target):
    if not profile_path(target).exists():
        pytest.skip(f"no fitted profile committed yet: edgekd profile --target {target} --fit")
    result = CliRunner().invoke(app, ["profile", "--target", target])
    assert result.exit_code == 0, result.output
    assert "latency model kind 'profile'" in result.output and "networks" in result.output


def test_profile_command_warns_about_flops_fallback(tmp_path):
    target = write_target(tmp_path, "elsewhere-npu", backend="qnn", device="npu")
    result = CliRunner().invoke(app, ["profile", "--target", str(target)])
    assert result.exit_code == 0, result.output
    assert "kind 'flops'" in result.output and "warning:" in result.output


def test_profile_command_refuses_fit_for_emulated_device(tmp_path):
    target = write_target(tmp_path, "htp-npu", backend="qnn", device="npu")
    result = CliRunner().invoke(app, ["profile", "--target", str(target), "--fit"])
    assert result.exit_code == 2 and "emulator" in result.output


def test_drift_check_reports_how_far_this_machine_is_from_its_profile(monkeypatch):
    import edgekd.cli.profile_lines as lines_module

    if not profile_path("x86-cpu-onnxruntime").exists():
        pytest.skip("no fitted profile committed")
    timed = []

    def anchors(base, runtime, input_shape, **kwargs):
        timed.append((base.precision, tuple(input_shape)))
        return {"factor": 1.2, "unrounded": 1.19, "anchors": 5, "ratio_range": [1.1, 1.3], "runtime": runtime,
                "input_shape": list(input_shape)}

    monkeypatch.setattr(lines_module, "measure_host_scale", anchors)
    result = CliRunner().invoke(app, ["profile", "--target", "x86-cpu-onnxruntime", "--drift",
                                      "--input-shape", "3x32x32"])
    assert result.exit_code == 0, result.output
    assert sorted(timed) == [("fp32", (3, 32, 32)), ("int8", (3, 32, 32))]
    assert result.output.count("×1.19") == 2 and 'rescale = "always"' in result.output


def test_drift_check_refuses_a_bad_shape_before_timing_anything(monkeypatch):
    import edgekd.cli.profile_lines as lines_module

    monkeypatch.setattr(lines_module, "measure_host_scale", lambda *a, **k: pytest.fail("timed anyway"))
    result = CliRunner().invoke(app, ["profile", "--drift", "--input-shape", "28x28"])
    assert result.exit_code == 2 and "--input-shape" in result.output


def test_drift_check_says_when_the_device_is_not_this_machine():
    result = CliRunner().invoke(app, ["profile", "--target", "android-executorch-xnnpack", "--drift"])
    assert result.exit_code == 0 and "drift check: not possible here" in result.output
