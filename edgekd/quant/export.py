"""Export a QAT student to a QDQ ONNX model that carries its *learned* scales (no re-calibration).

Each quantized Conv/Gemm gets ``QuantizeLinear → DequantizeLinear`` on its input with the learned
activation scale and zero point, and reads its weight through ``DequantizeLinear`` from an int8
initializer holding the learned integer grid (per-channel scales, axis 0). The float bias is
written on the int32 grid at ``s_in·s_w`` that QAT trained with. BatchNorm was folded at
preparation. A 4-bit grid is stored in int8 (values in [-7, 7]): ONNX Runtime's CPU kernels
have no int4 convolution, the numbers are identical.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

from edgekd._io import write_bytes
from edgekd.backends.export import onnx_bytes
from edgekd.errors import CompileError
from edgekd.quant.fake_quant import bias_grid, quantize_bias
from edgekd.quant.qat import QConv2d, QLinear, _set_module


class _ActQDQ(nn.Module):
    """Exports as QuantizeLinear/DequantizeLinear with the learned activation grid."""

    def __init__(self, scale: float, zero_point: int, qmin: int, qmax: int):
        super().__init__()
        self.scale, self.zero_point, self.qmin, self.qmax = scale, zero_point, qmin, qmax

    def forward(self, x):
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, self.qmin, self.qmax)


def _plain_twin(module: nn.Module) -> tuple[nn.Module, dict]:
    """Float layer holding the dequantized weight, and the weight grid to write as int8."""
    wq = module.weight_quant
    if wq.spec.kind != "int":
        raise CompileError(f"QDQ export needs integer weights; {wq.spec.kind} weights cannot be exported as QDQ")
    scale, _ = wq.export_params()
    a_scale, a_zero = module.act_quant.export_params()
    bias = module.bias
    if bias is not None:
        # the float bias already on the int32 grid at s_in·s_w that torch trained with: ORT's rewrite
        # to int32 gives back the same integers, runtimes that keep it float use the same values
        scale, bias_scale = bias_grid(bias, a_scale, scale, wq.spec.per_channel)
        bias = nn.Parameter(quantize_bias(bias.detach(), bias_scale))
    shape = (-1,) + (1,) * (module.weight.ndim - 1)
    s = scale.reshape(shape) if wq.spec.per_channel else scale
    ints = torch.clamp(torch.round(module.weight.detach() / s), wq.spec.qmin, wq.spec.qmax)
    base = nn.Conv2d if isinstance(module, QConv2d) else nn.Linear
    plain = base.__new__(base)
    plain.__dict__ = module.__dict__.copy()
    plain._modules = {}
    plain._parameters = {"weight": nn.Parameter(ints * s), "bias": bias}
    grid = {"ints": ints.to(torch.int8).numpy(), "scale": scale.numpy().astype(np.float32),
            "per_channel": wq.spec.per_channel}
    aq = module.act_quant.spec
    act = _ActQDQ(float(a_scale.item()), int(a_zero.item()), aq.qmin, aq.qmax)
    return nn.Sequential(act, plain), grid


def qdq_model(model: nn.Module) -> tuple[nn.Module, dict[str, dict]]:
    """A float copy of a QAT model with export-ready Q/DQ, and weight grids keyed by parameter name."""
    plain = copy.deepcopy(model).eval()
    grids = {}
    for name, module in list(plain.named_modules()):
        if isinstance(module, (QConv2d, QLinear)):
            if module.act_quant.spec.kind != "int":
                raise CompileError(f"{name}: QDQ export needs integer activations, got {module.act_quant.spec.kind}")
            twin, grid = _plain_twin(module)
            _set_module(plain, name, twin)
            grids[f"{name}.1.weight"] = grid
    return plain, grids


def _weights_to_dq(proto: onnx.ModelProto, grids: dict[str, dict]) -> int:
    """Replace each quantized float weight initializer by int8 + DequantizeLinear (in place)."""
    graph = proto.graph
    by_name = {init.name: init for init in graph.initializer}
    nodes = []
    for name, grid in grids.items():
        if name not in by_name:
            raise CompileError(f"QDQ export: weight {name!r} not found among the exported initializers")
        graph.initializer.remove(by_name[name])
        scale = grid["scale"] if grid["per_channel"] else grid["scale"].reshape(())
        zero = np.zeros(scale.shape, dtype=np.int8)
        graph.initializer.extend([numpy_helper.from_array(grid["ints"], f"{name}_quantized"),
                                  numpy_helper.from_array(scale, f"{name}_scale"),
                                  numpy_helper.from_array(zero, f"{name}_zero_point")])
        attrs = {"axis": 0} if grid["per_channel"] else {}
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale",
                                                           f"{name}_zero_point"], [name],
                                      name=f"{name}_DequantizeLinear", **attrs))
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
    return len(nodes)


def export_qdq(model: nn.Module, input_shape, path: str | Path, static_batch: int | None = None) -> Path:
    """Write the QAT ``model`` as a QDQ ONNX file at ``path`` (atomically); returns the path."""
    plain, grids = qdq_model(model)
    proto = onnx.load_from_string(onnx_bytes(plain, input_shape, static_batch, what="QDQ export",
                                              constant_folding=False))
    _weights_to_dq(proto, grids)
    onnx.checker.check_model(proto)
    return write_bytes(Path(path), proto.SerializeToString())
