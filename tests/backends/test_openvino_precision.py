"""OpenVINO runs fp32 artifacts in f32, not the CPU plugin's default bf16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgekd
from edgekd.validate.conformance import with_precision
from tests.backends.mbnet import images, mobile_mix

pytest.importorskip("openvino")


def test_openvino_fp32_artifact_runs_in_f32_and_matches_torch(tmp_path):
    model, x = mobile_mix(), images(16, seed=5)
    artifact = edgekd.compile(model, with_precision("x86-cpu-openvino", "fp32"), x, tmp_path, calib_size=16)
    runner = edgekd.load(artifact.path)
    assert str(runner.compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    out = runner(x)
    assert np.abs(out - ref).max() < 1e-3 * np.abs(ref).max()  # bf16 would be ~1e-2 relative
