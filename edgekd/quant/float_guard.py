"""Layers kept in float stay float in ONNX Runtime.

ONNX Runtime's ``WeightBiasQuantization`` graph optimizer (level 1, on by default) reads
``DequantizeLinear (per-tensor) → Conv/Gemm with float weights`` as a quantized model whose weights
were left out, and quantizes those weights per tensor. A layer the sensitivity analysis keeps in float
then runs with per-tensor int8 weights, worse than the per-channel int8 it replaced: keeping
EfficientNet-Lite1's first depthwise conv "in float" took top-1 agreement with fp32 from 85.6 % to
67.5 % (85.6 % with that optimizer disabled). Each kept layer gets its own DequantizeLinear whose scale
and zero point are repeated per channel (axis 1): the same numbers, and a per-axis input scale is not a
pattern that optimizer rewrites.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

_GUARDED = {"Conv", "ConvTranspose", "Gemm"}


def guard_float_layers(model: onnx.ModelProto, keep_float: list[str]) -> list[str]:
    """Give every kept-float Conv/Gemm fed by a per-tensor DequantizeLinear a per-channel copy of it.

    Returns the names of the layers guarded (in place).
    """
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    guarded, added = [], []
    for node in graph.node:
        if node.name not in keep_float or node.op_type not in _GUARDED or node.input[1] not in inits:
            continue
        dq = producer.get(node.input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[1] not in inits:
            continue
        scale = numpy_helper.to_array(inits[dq.input[1]])
        if scale.size != 1:
            continue  # already per-axis: not the optimizer's pattern
        channels = _input_channels(node, numpy_helper.to_array(inits[node.input[1]]))
        zero = numpy_helper.to_array(inits[dq.input[2]]) if len(dq.input) > 2 and dq.input[2] else None
        prefix = f"{node.name}_float_input"
        per_channel = [(scale, f"{prefix}_scale")] + ([(zero, f"{prefix}_zp")] if zero is not None else [])
        for value, name in per_channel:
            graph.initializer.append(numpy_helper.from_array(np.full(channels, value.item(), value.dtype), name))
        inputs = [dq.input[0], *(name for _, name in per_channel)]
        added.append((node, helper.make_node("DequantizeLinear", inputs, [f"{prefix}_dq"], name=f"{prefix}_dq",
                                             axis=1)))
        node.input[0] = f"{prefix}_dq"
        guarded.append(node.name)
    for node, dq in added:  # each new DQ right before its layer: the graph stays topologically sorted
        graph.node.insert(list(graph.node).index(node), dq)
    return guarded


def _input_channels(node: onnx.NodeProto, weight: np.ndarray) -> int:
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return int(weight.shape[1] if trans_b else weight.shape[0])
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    return int(weight.shape[0] if node.op_type == "ConvTranspose" else weight.shape[1] * group)
