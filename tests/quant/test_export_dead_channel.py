"""A dead channel (all-zero weights, hence a near-zero learned scale) must not break ORT's fused int8 kernels."""

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from edgekd.quant import export_qdq, format_from, prepare_qat


def test_qdq_export_with_dead_channel_matches_torch_in_optimized_onnxruntime(tmp_path):
    torch.manual_seed(0)
    # conv → relu → conv: the quantized input of the next conv lets ORT fuse the dead-channel conv to QLinearConv
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 4)).eval()
    with torch.no_grad():
        model[2].weight[0].zero_()  # channel 0 is dead: its weight scale collapses to the floor
        model[2].bias[0] = 1.5      # while its bias is large
    x = torch.randn(64, 1, 8, 8)
    qat = prepare_qat(model, format_from("int8", "uint8"), x).eval()
    path = export_qdq(qat, (1, 8, 8), tmp_path / "m.onnx")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # fused QLinearConv, int32 bias
    got = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = qat(x).numpy()
    assert np.abs(got - want).max() < 0.01
