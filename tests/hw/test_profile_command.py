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
