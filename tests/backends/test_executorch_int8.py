"""ExecuTorch XNNPACK int8 on a MobileNetV3/EfficientNet-Lite operator mix, next to ONNX Runtime int8.

Regression for issue 17: XNNPACK's quantizer fused only ReLU into a conv, so a ReLU6 shared the
conv's pre-clamp int8 range; on this network the .pte then scored SQNR -10 dB and 13 % top-1
agreement with fp32, where ONNX Runtime (same calibration) scores +4 dB and ~60 %. The network is
random and chaotic (8-bit input rounding alone costs most of the SQNR), so absolute figures are
low; what is asserted is ExecuTorch level with ONNX Runtime.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import edgekd
from tests.backends.mbnet import images, mobile_mix

pytest.importorskip("executorch.exir")


def _sqnr(ref: np.ndarray, out: np.ndarray) -> float:
    return float(10 * np.log10((ref**2).sum() / ((ref - out) ** 2).sum()))


@pytest.fixture(scope="module")
def mix():
    model, calib, val = mobile_mix(), images(64, seed=1), images(200, seed=2)
    with torch.no_grad():
        ref = model(torch.from_numpy(val)).numpy()
    return model, calib, val, ref


def test_executorch_int8_level_with_onnxruntime_on_relu6_depthwise_se_hardswish(mix, tmp_path):
    model, calib, val, ref = mix
    scores = {}
    for target in ("x86-cpu-onnxruntime", "android-executorch-xnnpack"):
        artifact = edgekd.compile(model, target, calib, tmp_path, calib_size=len(calib))
        out = edgekd.load(artifact.path)(val)
        scores[target] = (_sqnr(ref, out), float((out.argmax(1) == ref.argmax(1)).mean()), artifact)
    ort_sqnr, ort_agree, _ = scores["x86-cpu-onnxruntime"]
    et_sqnr, et_agree, et = scores["android-executorch-xnnpack"]
    assert et.details["fused_clamps"] >= 8  # stem, expand/depthwise ReLU6s and the head
    assert et.details["int8_lowering"]["ops_outside_xnnpack"] == {}
    assert et_sqnr >= ort_sqnr - 1.0, (et_sqnr, ort_sqnr)  # before the fix: -10.0 vs +4.1 dB
    assert et_agree >= ort_agree - 0.05, (et_agree, ort_agree)  # before the fix: 0.13 vs ~0.6
    assert et_sqnr > 2.0


def test_executorch_quantizer_fuses_relu6_into_conv_range(mix):
    """The ReLU6 output's int8 range is [0, 6] at most: the clamp's, not the conv's wider one."""
    from edgekd.backends.executorch import quantize_pt2e
    from edgekd.calibrate import calibrator_for

    model, calib, _, _ = mix
    q = quantize_pt2e(model, (torch.zeros(1, 3, 64, 64),), calib[:16], calibrator=calibrator_for("minmax"))
    qd = torch.ops.quantized_decomposed
    hardtanh = {torch.ops.aten.hardtanh.default, torch.ops.aten.hardtanh_.default}
    ranges = [255 * float(user.args[1]) for node in q.graph.nodes
              if node.op == "call_function" and node.target in hardtanh
              for user in node.users if user.target == qd.quantize_per_tensor.default]
    assert len(ranges) >= 8
    assert max(ranges) <= 6.0 + 1e-3, ranges  # before the fix: ranges up to the conv's (~tens)
