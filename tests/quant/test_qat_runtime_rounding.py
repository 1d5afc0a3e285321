"""Torch fake-quant computes what ONNX Runtime runs: QuantizeLinear's rounding, the int32 bias ORT fuses."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn

from edgekd.quant import FakeQuant, QConv2d, QLinear, activation_spec, export_qdq, format_from, prepare_qat


def _ort_qdq(x: np.ndarray, scale: float, zero: int, dtype) -> np.ndarray:
    """DequantizeLinear(QuantizeLinear(x)) in ONNX Runtime, per tensor."""
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], "qdq",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [len(x)])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [len(x)])],
        [numpy_helper.from_array(np.array(scale, np.float32), "s"),
         numpy_helper.from_array(np.array(zero, dtype), "z")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


@pytest.mark.parametrize("fmt,zero", [(format_from("int4", "int8"), -128), (format_from("int8", "int8"), -55),
                                      (format_from(), 3), (format_from(), 0)], ids=["int8-z-128", "int8-z-55",
                                                                                     "uint8-z3", "uint8-z0"])
def test_fake_quant_matches_onnx_quantize_linear_next_to_ties(fmt, zero):
    spec = activation_spec(fmt)
    fq = FakeQuant(spec)
    fq.init_from_range(torch.tensor([-1.0]), torch.tensor([1.0]))
    with torch.no_grad():
        fq.scale.fill_(0.037)
        fq.zero_point.fill_(zero)
    k = torch.arange(-20, 21, dtype=torch.float32)
    # x / s a hair above or below k + 0.5: adding the zero point first would round those onto the tie
    u = torch.cat([k + 0.5 + d for d in (1e-6, -1e-6, 3e-6, 0.0)] + [torch.linspace(-300, 300, 2001)])
    x = (u * 0.037).numpy().astype(np.float32)
    want = _ort_qdq(x, 0.037, zero, np.int8 if spec.qmin < 0 else np.uint8)
    with torch.no_grad():
        got = fq(torch.from_numpy(x)).numpy()
    assert np.array_equal(got, want), f"{int((got != want).sum())} of {len(x)} values differ from ORT"


def _biases_ort_runs(path, tmp_path) -> dict[str, np.ndarray]:
    """The bias of every Conv/Gemm in the graph ORT optimizes (int32 + DequantizeLinear, or float)."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # where ORT quantizes biases
    so.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(tmp_path / "opt.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    dq = {n.output[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}
    out = {}
    for node in graph.node:
        if node.op_type in ("Conv", "Gemm") and len(node.input) > 2:
            bias = node.input[2]
            if bias in dq:  # int32 bias: value = int * scale, as the fused kernel computes it
                ints, scale = inits[dq[bias].input[0]], inits[dq[bias].input[1]]
                value = (ints.astype(np.float32) * scale).astype(np.float32)
            else:
                value = inits[bias]
            out[node.input[1].removesuffix(".1.weight")] = value
    return out


@pytest.mark.parametrize("fmt", [format_from(), format_from("int4", "int8")], ids=lambda f: f.key)
def test_qat_bias_is_the_bias_onnxruntime_runs(fmt, tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 4)).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.bias.uniform_(-0.5, 0.5)  # biases far from the int32 grid of s_in·s_w
    x = torch.randn(64, 1, 8, 8)
    qat = prepare_qat(model, fmt, x).eval()
    path = export_qdq(qat, (1, 8, 8), tmp_path / "m.onnx")
    runs = _biases_ort_runs(path, tmp_path)
    assert any(name in runs for name in ("2", "4"))  # ORT took the int32 path somewhere
    for name, module in qat.named_modules():
        if isinstance(module, (QConv2d, QLinear)):
            zeros = torch.zeros(1, module.weight.shape[1], *([3, 3] if isinstance(module, QConv2d) else []))
            with torch.no_grad():  # zero in: the layer's output is the bias it adds (0 is on every grid)
                used = module(zeros).reshape(module.weight.shape[0], -1)[:, 0].numpy()
            np.testing.assert_array_equal(used, runs[name], err_msg=f"layer {name}")
