"""Kernel detection from the runtimes themselves, and the per-kernel-type latency model."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.errors import ConfigError
from edgekd.hw.kernel_model import KernelLatencyModel, fit_kernel_model
from edgekd.hw.kernels import Kernel, runtime_kernels
from edgekd.onnx_export import export_onnx

SHAPE = (3, 16, 16)


class ConvBnReluPoolAdd(nn.Module):
    """conv+bn+relu (fusable into one kernel), then y + maxpool(y): an Add after the activation."""

    def __init__(self):
        super().__init__()
        self.c, self.b, self.r = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.p, self.f = nn.MaxPool2d(3, 1, 1), nn.Linear(8, 4)

    def forward(self, x):
        y = self.r(self.b(self.c(x)))
        return self.f((y + self.p(y)).mean((2, 3)))


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    torch.manual_seed(0)
    return export_onnx(ConvBnReluPoolAdd().eval(), SHAPE, tmp_path_factory.mktemp("k") / "m.onnx")


def test_runtime_kernels_onnxruntime_runs_conv_bn_relu_as_one_kernel_and_add_on_its_own(onnx_file):
    kernels = runtime_kernels(onnx_file, SHAPE, runtime="onnxruntime")
    ops = [k.op for k in kernels]
    assert ops.count("Conv") == 1 and "Relu" not in ops and "BatchNormalization" not in ops
    assert ops.count("Add") == 1 and ops.count("MaxPool") == 1
    conv = next(k for k in kernels if k.op == "Conv")
    assert conv.weight is not None and conv.weight[2:] == (3, 3) and conv.ms is not None and conv.ms > 0


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino is not installed")
def test_runtime_kernels_openvino_names_what_each_kernel_fused(onnx_file):
    kernels = runtime_kernels(onnx_file, SHAPE, runtime="openvino")
    conv = next(k for k in kernels if k.op == "Convolution")
    assert any("Relu" in n for n in conv.fused) and any("Conv" in n for n in conv.fused)
    add = [k for k in kernels if k.op == "Eltwise"]
    assert len(add) == 1 and add[0].fused == ("/Add",)
    assert not any(k.op == "Relu" for k in kernels)


def test_kernel_macs_count_weights_for_convs_and_elements_for_element_wise():
    conv = Kernel("c", "Conv", ((1, 3, 16, 16), (8, 3, 3, 3), (8,)), (1, 8, 16, 16))
    add = Kernel("a", "Add", ((1, 8, 16, 16), (1, 8, 16, 16)), (1, 8, 16, 16))
    scale = Kernel("se", "Mul", ((1, 8, 16, 16), (1, 8, 1, 1)), (1, 8, 16, 16))
    fc = Kernel("f", "Gemm", ((1, 8), (4,)), (1, 4))  # weights prepacked away by the runtime
    depthwise = Kernel("d", "Conv", ((1, 8, 16, 16), (8, 1, 3, 3)), (1, 8, 8, 8))
    assert conv.macs == 8 * 16 * 16 * 3 * 9
    assert add.macs == scale.macs == 8 * 16 * 16 and add.weight is None and scale.weight is None
    assert fc.macs == 4 * 8
    features = dict(zip(("log_macs", "log_out", "log_in", "log_params", "kernel_area", "depthwise", "stride"),
                        depthwise.features()))
    assert features["depthwise"] == 1.0 and features["stride"] == 2.0 and features["kernel_area"] == 9.0
    assert Kernel.from_json(conv.to_json()) == conv


def _synthetic_network(rng) -> tuple[list[Kernel], float]:
    """Kernels whose times follow a known law per type; the network adds 0.01 ms per kernel + 0.05 ms."""
    kernels, total = [], 0.05
    for _ in range(int(rng.integers(3, 9))):
        c, hw = int(rng.choice([8, 16, 32, 64])), int(rng.choice([7, 14, 28]))
        conv = Kernel("c", "Conv", ((1, c, hw, hw), (c, c, 3, 3)), (1, c, hw, hw))
        add = Kernel("a", "Add", ((1, c, hw, hw), (1, c, hw, hw)), (1, c, hw, hw))
        for k, per_op in ((conv, 2e-7), (add, 5e-6)):
            ms = per_op * k.macs + 0.002
            kernels.append(Kernel(k.name, k.op, k.inputs, k.output, ms=ms))
            total += ms + 0.01
    return kernels, total


def test_fit_kernel_model_recovers_per_type_laws_on_held_out_networks():
    rng = np.random.default_rng(0)
    train = [_synthetic_network(rng) for _ in range(40)]
    test = [_synthetic_network(rng) for _ in range(20)]
    model = KernelLatencyModel(fit_kernel_model(train))
    assert set(model.model["per_type"]) == {"Conv", "Add"}
    errors = [abs(model.predict_kernels_ms(ks) - t) / t for ks, t in test]
    assert np.mean(np.array(errors) <= 0.10) >= 0.9
    assert model.model["overhead"]["per_kernel_ms"] == pytest.approx(0.01, abs=0.006)


def test_kernel_model_uses_shared_trees_for_a_rare_type_and_refuses_too_few_networks():
    rng = np.random.default_rng(1)
    nets = [_synthetic_network(rng) for _ in range(10)]
    nets[0][0].append(Kernel("g", "GlobalAveragePool", ((1, 8, 7, 7),), (1, 8, 1, 1), ms=0.003))
    model = KernelLatencyModel(fit_kernel_model(nets))
    ms, source = model.kernel_ms(Kernel("g", "GlobalAveragePool", ((1, 8, 7, 7),), (1, 8, 1, 1)))
    assert source == "shared" and math.isfinite(ms) and ms > 0
    with pytest.raises(ConfigError, match="at least 3"):
        fit_kernel_model(nets[:2])


def test_runtime_kernels_names_the_valid_runtimes(onnx_file):
    with pytest.raises(ConfigError, match="onnxruntime, openvino"):
        runtime_kernels(onnx_file, SHAPE, runtime="tensorrt")


@pytest.mark.skipif(importlib.util.find_spec("executorch") is None, reason="executorch is not installed")
def test_pte_partition_reads_what_xnnpack_took_and_what_stayed_portable(tmp_path):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from edgekd.hw.kernels import pte_partition

    class TopTwo(nn.Module):  # XNNPACK has no top-k: that op stays a portable kernel
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten(), nn.Linear(8, 4))

        def forward(self, x):
            return torch.topk(self.body(x), 2).values

    def lower(model, name):
        ep = torch.export.export(model.eval(), (torch.zeros(1, *SHAPE),))
        path = tmp_path / name
        path.write_bytes(to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch().buffer)
        return pte_partition(path)

    mixed = lower(TopTwo(), "mixed.pte")
    assert mixed.delegates == ("XnnpackBackend",) and mixed.portable_ops == ("aten::topk",)
    assert not mixed.fully_delegated
    assert lower(TopTwo().body, "body.pte").fully_delegated
