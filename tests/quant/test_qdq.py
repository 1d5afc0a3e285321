"""Post-training QDQ: QDQConfig from a target's format honours or rejects every field."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.onnx_export import export_onnx
from edgekd.quant.qdq import QDQConfig, qdq_summary, quantize_onnx
from edgekd.targets import NumericFormat, list_targets, load_recipe

QDQ_BACKENDS = ("onnxruntime", "openvino", "openvino-npu", "qnn", "tensorrt")


@pytest.fixture(scope="module")
def positive_conv(tmp_path_factory):
    """A conv whose weights are all positive (asymmetric weights then need a zero point), and calibration data."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 6 * 6, 4))
    with torch.no_grad():
        model[0].weight.abs_()
    path = export_onnx(model, (3, 8, 8), tmp_path_factory.mktemp("qdq") / "fp32.onnx")
    return path, np.random.default_rng(0).standard_normal((16, 3, 8, 8)).astype(np.float32)


def _weight_zero_points(path) -> dict[str, np.ndarray]:
    graph = onnx.load(str(path)).graph
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    return {n.input[0]: inits[n.input[2]] for n in graph.node
            if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].dtype == np.int8
            and inits[n.input[0]].ndim > 1}


@pytest.mark.parametrize("target", [t for t in list_targets() if t.backend in QDQ_BACKENDS and t.format.is_quantized],
                         ids=lambda t: t.name)
def test_config_from_a_shipped_target_carries_its_format_and_recipe(target):
    config = QDQConfig.from_target(target, load_recipe(target.calibration.recipe))
    fmt = target.format
    assert config.activations == fmt.activations
    assert config.activation_symmetric == fmt.activation_symmetric
    assert config.weight_symmetric == fmt.weight_symmetric
    assert config.per_channel == (fmt.weight_granularity == "per_channel")
    assert config.method == load_recipe(target.calibration.recipe).method


def test_config_without_a_recipe_calibrates_min_max():
    config = QDQConfig.from_format(NumericFormat(weights="int8", activations="uint8"))
    assert (config.method, config.percentile) == ("minmax", 99.99)


@pytest.mark.parametrize("fields,named", [
    ({"weights": "int8", "activations": "fp16"}, "activations"),  # weight-only: not a QDQ PTQ
    ({"weights": "int4", "activations": "int8"}, "weights"),  # 4-bit weights come from QAT
    ({"weights": "int8", "activations": "uint4"}, "activations"),
    ({"weights": "int8", "activations": "uint8", "activation_symmetric": True}, "activation_symmetric"),
    ({"weights": "int8", "activations": "uint8", "weight_symmetric": False}, "weight_symmetric"),  # per channel
])
def test_config_rejects_a_format_field_it_cannot_honour(fields, named):
    with pytest.raises(ConfigError, match=named):
        QDQConfig.from_format(NumericFormat(**fields))


def test_asymmetric_per_tensor_weights_get_zero_points(positive_conv, tmp_path):
    fp32, calib = positive_conv
    fmt = NumericFormat(weights="int8", activations="uint8", weight_granularity="per_tensor")
    symmetric = quantize_onnx(fp32, tmp_path / "sym.onnx", calib, QDQConfig.from_format(fmt))
    asymmetric = quantize_onnx(fp32, tmp_path / "asym.onnx", calib,
                               QDQConfig.from_format(fmt.model_copy(update={"weight_symmetric": False})))
    assert all(np.all(z == 0) for z in _weight_zero_points(symmetric).values())
    zero_points = _weight_zero_points(asymmetric)
    assert zero_points and any(np.any(z != 0) for z in zero_points.values())
    assert int(zero_points["0.weight_quantized"].ravel()[0]) == -128  # all-positive weights: [0, max] -> [-128, 127]


@pytest.mark.parametrize("activations,symmetric,dtype", [("uint8", False, "uint8"), ("int8", False, "int8"),
                                                          ("int8", True, "int8")])
def test_activation_type_follows_the_format(positive_conv, tmp_path, activations, symmetric, dtype):
    fp32, calib = positive_conv
    config = QDQConfig.from_format(NumericFormat(weights="int8", activations=activations,
                                                 activation_symmetric=symmetric))
    ranges = qdq_summary(quantize_onnx(fp32, tmp_path / "q.onnx", calib, config))["activation_ranges"]
    assert ranges and {r["dtype"] for r in ranges.values()} == {dtype}
    zero = {z for r in ranges.values() for z in np.ravel(r["zero_point"])}
    assert zero == {0} if symmetric else zero != {0}


def test_tensorrt_rejects_asymmetric_activations_before_quantizing():
    from edgekd.backends.tensorrt import explicit_quantization
    from edgekd.targets import load_target

    target = load_target("jetson-orin-tensorrt")
    assert explicit_quantization(target).quantize_bias is False
    asym = target.model_copy(update={"format": target.format.model_copy(
        update={"activation_symmetric": False})})
    with pytest.raises(ConfigError, match="activation_symmetric"):
        explicit_quantization(asym)


def test_given_ranges_replace_calibration(positive_conv, tmp_path):
    """The sensitivity analysis re-quantizes one graph per layer from the artifact's cached ranges."""
    from edgekd.calibrate import read_cache

    fp32, calib = positive_conv
    first = quantize_onnx(fp32, tmp_path / "a.onnx", calib, QDQConfig(), cache_path=tmp_path / "cache.json")
    other_data = calib[::-1] * 3.0  # ignored when the ranges are given
    cached = read_cache(tmp_path / "cache.json")
    again = quantize_onnx(fp32, tmp_path / "b.onnx", other_data, QDQConfig(), ranges=cached)
    assert qdq_summary(again)["activation_ranges"] == qdq_summary(first)["activation_ranges"]
    recalibrated = quantize_onnx(fp32, tmp_path / "c.onnx", other_data, QDQConfig())
    assert qdq_summary(recalibrated)["activation_ranges"] != qdq_summary(first)["activation_ranges"]


def test_a_layer_kept_float_stays_float_in_onnxruntime(tmp_path):
    """ONNX Runtime's WeightBiasQuantization optimizer would quantize a kept-float conv's weights per tensor."""
    import onnxruntime as ort

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.ReLU(),  # then a Q
                                torch.nn.Conv2d(8, 8, 1), torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 4))
    with torch.no_grad():
        model[2].weight[:4] *= 100.0  # per-tensor int8 weights would flush the other four channels to zero
    fp32 = export_onnx(model, (3, 8, 8), tmp_path / "fp32.onnx")
    depthwise = next(n.name for n in onnx.load(str(fp32)).graph.node
                     if n.op_type == "Conv" and any(a.name == "group" and a.i == 8 for a in n.attribute))
    rng = np.random.default_rng(0)
    calib, x = (rng.standard_normal((n, 3, 8, 8)).astype(np.float32) for n in (32, 16))
    q = quantize_onnx(fp32, tmp_path / "q.onnx", calib, QDQConfig(), keep_float=[depthwise])

    def run(**kwargs):
        sess = ort.InferenceSession(str(q), providers=["CPUExecutionProvider"], **kwargs)
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]

    as_written = run(disabled_optimizers=["WeightBiasQuantization"])
    np.testing.assert_allclose(run(), as_written, rtol=1e-5, atol=1e-5)


def _int8_weights(path) -> list[np.ndarray]:
    model = onnx.load(str(path))
    return [onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == onnx.TensorProto.INT8]


def test_reduced_range_weights_are_seven_bit_and_auto_follows_this_cpu(positive_conv, monkeypatch):
    from edgekd.quant import qdq

    fp32, calib = positive_conv
    for reduce, bound in ((False, 127), (True, 64)):
        q = quantize_onnx(fp32, fp32.parent / f"rr-{reduce}.onnx", calib, QDQConfig(weight_reduce_range=reduce))
        assert max(int(np.abs(w).max()) for w in _int8_weights(q)) == bound
    for vnni_missing in (True, False):
        monkeypatch.setattr(qdq, "x86_without_vnni", lambda v=vnni_missing: v)
        fmt = NumericFormat(weights="int8", activations="uint8", weight_reduce_range="auto")
        assert QDQConfig.from_format(fmt).weight_reduce_range is vnni_missing
    assert QDQConfig.from_format(NumericFormat(weights="int8", activations="uint8")).weight_reduce_range is False


def test_the_x86_artifact_computes_what_its_qdq_graph_says_on_this_cpu(tmp_path):
    """ONNX Runtime's fused int8 kernels against the same graph run unfused (Q/DQ in float): on x86
    without VNNI, 8-bit weights overflow the kernels' int16 sums unless the target reduces their range."""
    from edgekd.ort_session import ort_session
    from edgekd.targets import load_target

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.Flatten(),
                                torch.nn.Linear(32 * 8 * 8, 10))
    fp32 = export_onnx(model, (1, 8, 8), tmp_path / "fp32.onnx")
    rng = np.random.default_rng(0)
    calib, x = (np.abs(rng.standard_normal((n, 1, 8, 8))).astype(np.float32) * 4 for n in (64, 64))
    config = QDQConfig.from_target(load_target("x86-cpu-onnxruntime"))
    q = quantize_onnx(fp32, tmp_path / "q.onnx", calib, config)

    def run(optimize):
        sess = ort_session(q, optimize=optimize)
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]

    fused, exact = run(True), run(False)
    assert np.abs(fused - exact).max() <= 0.05 * np.abs(exact).max()
