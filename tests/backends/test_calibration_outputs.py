"""Clipping calibrators (entropy, percentile, MSE) leave the graph's logits their observed extremes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.calibrate import Entropy, Percentile, calibrate
from edgekd.onnx_export import export_onnx


@pytest.mark.parametrize("calibrator", [Entropy(), Percentile(99.0)])
def test_calibrate_keeps_logit_extremes(calibrator, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 200)).eval()
    x = np.random.default_rng(0).standard_normal((64, 1, 4, 4)).astype(np.float32)
    with torch.no_grad():  # one large logit per sample, as a confident classifier gives: the histogram's tail
        model[1].bias.zero_()
        model[1].weight.mul_(0.2)
        model[1].weight[:16].copy_(8.0 * torch.eye(16))
        logits = model(torch.from_numpy(x)).numpy()
    path = export_onnx(model, (1, 4, 4), tmp_path / "m.onnx")
    ranges = calibrate(path, x, calibrator).ranges
    lo, hi = ranges["logits"]
    assert hi >= logits.max() - 1e-4 and lo <= logits.min() + 1e-4  # before: hi clipped to the bulk (~3 of ~25)
    hidden = [name for name in ranges if name not in ("logits", "input")]
    assert all(isinstance(ranges[n][0], float) for n in hidden)


def test_entropy_ignores_the_zero_spike_of_relu6_outputs():
    from edgekd.calibrate import TensorStats
    from edgekd.calibrate.collect import accumulate
    from edgekd.calibrate.methods import BINS

    rng = np.random.default_rng(0)
    v = np.where(rng.random(200_000) < 0.8, 0.0, np.clip(rng.gamma(2.0, 1.0, 200_000), 0, 6)).astype(np.float32)
    stats = TensorStats(0.0, 6.0, np.zeros(BINS, np.int64), np.zeros(BINS, np.int64))
    accumulate(stats, v)
    lo, hi = Entropy().range(stats, symmetric=False)
    assert lo == 0.0
    assert hi > 3.0  # before: 0.75 (amax/8, the first candidate), clipping most of the non-zero values
    assert float((v > hi).mean()) < 0.02
