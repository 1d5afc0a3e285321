"""Export a QAT student to a QDQ ONNX model that carries its *learned* scales (no re-calibration).

Each quantized Conv/Gemm gets ``QuantizeLinear → DequantizeLinear`` on its input with the learned
activation scale and zero point, and reads its weight through ``DequantizeLinear`` from an int8
initializer holding the learned integer grid (per-channel scales, axis 0). The float bias is
written on the int32 grid at ``s_in·s_w`` that QAT trained with. BatchNorm was folded at
preparation. 4-bit grids are written as ONNX INT4/UINT4 (opset 21): int4 weight initializers
with their DequantizeLinear, and, for 4-bit activations, QuantizeLinear whose zero point is
4-bit, so the runtime saturates to the 4-bit range exactly as the fake quantizer clamps.
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
from edgekd.errors import CompileError
from edgekd.onnx_export import onnx_bytes
from edgekd.quant.fake_quant import bias_grid, quantize_bias
from edgekd.quant.qat import QConv2d, QLinear, _set_module


class _ActQDQ(nn.Module):
    """Exports as QuantizeLinear/DequantizeLinear with the learned activation grid."""

    def __init__(self, scale: float, zero_point: int, qmin: int, qmax: int):
        super().__init__()
        self.scale, self.zero_point, self.qmin, self.qmax = scale, zero_point, qmin, qmax

    def forward(self, x):
        qmin, qmax = self.qmin, self.qmax
        if torch.onnx.is_in_onnx_export() and qmax - qmin < 255:  # the exporter writes 8-bit Q/DQ only;
            qmin, qmax = (0, 255) if qmin >= 0 else (-128, 127)  # _retype_4bit narrows the zero point after
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, qmin, qmax)


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
            "per_channel": wq.spec.per_channel, "bits": wq.spec.bits}
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
        ints, zero = grid["ints"], np.zeros(scale.shape, dtype=np.int8)
        if grid["bits"] == 4:  # INT4 (packed two per byte); onnx's helper packs a plain list
            four = onnx.TensorProto.INT4
            tensors = [helper.make_tensor(f"{name}_quantized", four, ints.shape, ints.flatten().tolist()),
                       helper.make_tensor(f"{name}_zero_point", four, zero.shape, zero.flatten().tolist())]
        else:
            tensors = [numpy_helper.from_array(ints, f"{name}_quantized"),
                       numpy_helper.from_array(zero, f"{name}_zero_point")]
        graph.initializer.extend([*tensors, numpy_helper.from_array(scale, f"{name}_scale")])
        attrs = {"axis": 0} if grid["per_channel"] else {}
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale",
                                                           f"{name}_zero_point"], [name],
                                      name=f"{name}_DequantizeLinear", **attrs))
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
    return len(nodes)


INT4_OPSET = 21  # the first opset whose QuantizeLinear/DequantizeLinear take INT4/UINT4


def _retype_4bit(proto: onnx.ModelProto, signed: bool) -> int:
    """Make every activation QuantizeLinear 4-bit: its zero point's Cast now targets (U)INT4 (in place)."""
    graph = proto.graph
    producers = {out: node for node in graph.node for out in node.output}
    kind = onnx.TensorProto.INT4 if signed else onnx.TensorProto.UINT4
    retyped = 0
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or len(node.input) < 3:
            continue
        cast = producers.get(node.input[2])
        if cast is None or cast.op_type != "Cast":
            raise CompileError(f"QDQ export: the zero point of {node.name} is not a Cast; cannot make it 4-bit")
        for attr in cast.attribute:
            if attr.name == "to":
                attr.i = kind
        retyped += 1
    return retyped


def _uses_4bit(model: nn.Module) -> tuple[bool, bool | None]:
    """(any 4-bit weight, 4-bit activations signed? / None when activations are 8-bit)."""
    specs = [(m.weight_quant.spec, m.act_quant.spec) for m in model.modules() if isinstance(m, (QConv2d, QLinear))]
    w4 = any(w.bits == 4 for w, _ in specs)
    acts = {a.qmin < 0 for _, a in specs if a.bits == 4}
    return w4, (acts.pop() if acts else None)


def export_qdq(model: nn.Module, input_shape, path: str | Path, static_batch: int | None = None) -> Path:
    """Write the QAT ``model`` as a QDQ ONNX file at ``path`` (atomically); returns the path.

    4-bit grids come out as INT4/UINT4 tensors at opset 21 (ONNX Runtime 1.18+ runs them).
    """
    w4, a4_signed = _uses_4bit(model)
    plain, grids = qdq_model(model)
    proto = onnx.load_from_string(onnx_bytes(plain, input_shape, static_batch, what="QDQ export",
                                              constant_folding=False))
    _weights_to_dq(proto, grids)
    if a4_signed is not None:
        _retype_4bit(proto, a4_signed)
    if w4 or a4_signed is not None:
        for opset in proto.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = max(opset.version, INT4_OPSET)
        proto.ir_version = max(proto.ir_version, 10)
    onnx.checker.check_model(proto)
    return write_bytes(Path(path), proto.SerializeToString())
