"""Low-bit formats as target data: W4A8 (int4 weights) and W4A4 (int4 weights, uint4 activations).

Their QDQ export carries INT4/UINT4 tensors with the learned scales, and ONNX Runtime runs it
computing what torch fake-quant computes.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper

from edgekd.models import create_student
from edgekd.quant import FakeQuant, QConv2d, QLinear, activation_spec, export_qdq, prepare_qat, weight_spec
from edgekd.targets import load_target

W4A4_TOML = """
name = "cpu-w4{act}"
backend = "onnxruntime"
device = "cpu"
ops = ["conv", "relu", "add", "global_avgpool", "linear"]

[format]
weights = "int4"
activations = "{act}"
activation_symmetric = {sym}
"""


@pytest.fixture
def target_format(tmp_path):
    def load(act: str):
        path = tmp_path / f"cpu-w4{act}.toml"
        path.write_text(W4A4_TOML.format(act=act, sym="false" if act.startswith("u") else "true"))
        return load_target(str(path)).format

    return load


def test_w4a4_format_from_a_target_file_gives_4bit_grids(target_format):
    fmt = target_format("uint4")
    w, a = weight_spec(fmt), activation_spec(fmt)
    assert (w.bits, w.qmin, w.qmax, w.per_channel) == (4, -7, 7, True)
    assert (a.bits, a.qmin, a.qmax, a.symmetric) == (4, 0, 15, False)


def _prepared(fmt, seed=0):
    torch.manual_seed(seed)
    model = create_student("resnet", (1, 8, 8), 10, widths=(8, 8, 8)).eval()
    x = torch.randn(128, 1, 8, 8)
    q = prepare_qat(model, fmt, x[:64]).eval()
    with torch.no_grad():  # stand-in for training: scales that min/max calibration would never give
        for m in q.modules():
            if isinstance(m, FakeQuant) and m.spec.kind == "int":
                m.scale.mul_(1.0 + 0.3 * torch.rand_like(m.scale))
    return q, x


def _inits(proto) -> dict[str, onnx.TensorProto]:
    return {i.name: i for i in proto.graph.initializer}


@pytest.mark.parametrize("act", ["int8", "uint4"])
def test_export_writes_int4_weights_in_range_with_the_learned_scales(target_format, act, tmp_path):
    q, _ = _prepared(target_format(act))
    proto = onnx.load(str(export_qdq(q, (1, 8, 8), tmp_path / "m.onnx")))
    assert proto.opset_import[0].version >= 21
    inits = _inits(proto)
    layers = {n: m for n, m in q.named_modules() if isinstance(m, (QConv2d, QLinear))}
    assert layers
    for name, module in layers.items():
        weight = inits[f"{name}.1.weight_quantized"]
        assert weight.data_type == onnx.TensorProto.INT4
        ints = numpy_helper.to_array(weight).astype(np.int8)
        assert ints.min() >= -7 and ints.max() <= 7
        scale = numpy_helper.to_array(inits[f"{name}.1.weight_scale"])
        learned = module.weight_quant.export_params()[0].numpy()
        assert np.array_equal(scale, learned)  # the learned scale itself (no channel is dead here)
        assert np.array_equal(ints, np.clip(np.round(module.weight.detach().numpy() / scale.reshape(
            (-1,) + (1,) * (module.weight.ndim - 1))), -7, 7))


def test_export_w4a4_quantizes_activations_to_uint4_with_learned_grid(target_format, tmp_path):
    q, _ = _prepared(target_format("uint4"))
    proto = onnx.load(str(export_qdq(q, (1, 8, 8), tmp_path / "m.onnx")))
    producers = {o: n for n in proto.graph.node for o in n.output}
    quantize = [n for n in proto.graph.node if n.op_type == "QuantizeLinear"]
    acts = [m.act_quant for m in q.modules() if isinstance(m, (QConv2d, QLinear))]
    assert len(quantize) == len(acts)
    for node in quantize:
        cast = producers[node.input[2]]
        assert {a.name: a.i for a in cast.attribute}["to"] == onnx.TensorProto.UINT4
    zeros = sorted(float(a.zero_point) for a in acts)
    assert all(0 <= z <= 15 for z in zeros)


@pytest.mark.parametrize("weights,act", [("int4", "int8"), ("int4", "uint4")])
def test_onnxruntime_runs_lowbit_export_as_torch_fake_quant(target_format, weights, act, tmp_path):
    q, x = _prepared(target_format(act), seed=1)
    path = export_qdq(q, (1, 8, 8), tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = q(x).numpy()
    assert np.array_equal(got.argmax(1), want.argmax(1))
    assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()


def _ort_qdq4(x: np.ndarray, scale: float, zero: int, kind) -> np.ndarray:
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], "qdq4",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [len(x)])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [len(x)])],
        [numpy_helper.from_array(np.array(scale, np.float32), "s"), helper.make_tensor("z", kind, [], [zero])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    proto.ir_version = 10
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]


@pytest.mark.parametrize("act,zero", [("uint4", 0), ("uint4", 9), ("int4", -3)])
def test_fake_quant_matches_onnx_4bit_quantize_linear_next_to_ties(target_format, act, zero):
    spec = activation_spec(target_format(act))
    fq = FakeQuant(spec)
    fq.init_from_range(torch.tensor([-1.0]), torch.tensor([1.0]))
    with torch.no_grad():
        fq.scale.fill_(0.037)
        fq.zero_point.fill_(zero)
    k = torch.arange(-20, 21, dtype=torch.float32)
    u = torch.cat([k + 0.5 + d for d in (1e-6, -1e-6, 0.0)] + [torch.linspace(-30, 30, 601)])
    x = (u * 0.037).numpy().astype(np.float32)
    want = _ort_qdq4(x, 0.037, zero, onnx.TensorProto.UINT4 if spec.qmin == 0 else onnx.TensorProto.INT4)
    with torch.no_grad():
        got = fq(torch.from_numpy(x)).numpy()
    assert np.array_equal(got, want), f"{int((got != want).sum())} of {len(x)} values differ from ORT"


def test_w2a8_ternary_weights_export_in_range_and_onnxruntime_matches(tmp_path):
    from edgekd.quant import format_from

    fmt = format_from("int2", "int8")
    assert fmt.is_quantized and (weight_spec(fmt).qmin, weight_spec(fmt).qmax) == (-1, 1)
    q, x = _prepared(fmt, seed=2)
    path = export_qdq(q, (1, 8, 8), tmp_path / "m.onnx")
    inits = _inits(onnx.load(str(path)))
    weights = [numpy_helper.to_array(v) for k, v in inits.items() if k.endswith("weight_quantized")]
    assert weights and all(w.dtype == np.int8 and set(np.unique(w)) <= {-1, 0, 1} for w in weights)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = q(x).numpy()
    assert np.array_equal(got.argmax(1), want.argmax(1)) and np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
