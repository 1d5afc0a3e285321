"""Bias correction of an int8 QDQ graph (Nagel et al., "Data-Free Quantization", 2019, §4.2).

Rounding weights to int8 shifts the mean of each layer's output by ``(W_q - W)·E[x]``; the shifts
add up along the network. For every quantized Conv/Gemm with a constant bias, ``E[x]`` (its input's
mean per channel) is measured on the calibration data in the QDQ graph, in one pass, and the shift
is taken out of the bias (an int32 bias moves by ``round(shift / bias_scale)``). Each layer's own
error is corrected, so correcting one does not change what the next must correct.
(An end-to-end match of output means, every layer at once, over-corrects: each layer would also
take out the error its predecessors already removed; on EfficientNet-Lite1 it ruined the graph.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

log = logging.getLogger(__name__)

_LAYERS = {"Conv", "Gemm"}


def correct_biases(qdq: onnx.ModelProto, fp32_path: Path, calib: np.ndarray, *, batch: int = 32,
                   static: bool = False) -> dict:
    """Shift the biases of ``qdq`` (in place) by each layer's mean weight-rounding error, ``-(W_q - W)·E[x]``
    with ``E[x]`` the mean of the layer's (quantized) input per channel on ``calib``.

    Returns a summary: the layers corrected and the mean |shift| applied.
    ``fp32_path``: the float graph the QDQ graph was quantized from (its float weights, by node name).
    ``static``: the graphs have a fixed batch of ``batch`` (the last chunk is zero-padded and dropped).
    """
    biases = _bias_sites(qdq)
    float_weights = _float_weights(onnx.load(str(fp32_path)))
    biases = {n: b for n, b in biases.items() if b.node.name in float_weights and b.weight is not None}
    if not biases:
        return {"layers": 0}
    inputs = {n: b.node.input[0] for n, b in biases.items()}
    means = _channel_means(qdq, sorted(set(inputs.values())), calib, batch, static)
    shifts = []
    for name, bias in biases.items():
        delta = bias.weight - float_weights[bias.node.name]
        shift = -_apply(bias.node, delta, means[inputs[name]])
        bias.add(shift)
        shifts.append(float(np.mean(np.abs(shift))))
    log.info("bias correction: %d layers, mean |shift| %.4g", len(shifts), float(np.mean(shifts)))
    return {"layers": len(shifts), "mean_abs_shift": float(np.mean(shifts))}


def _apply(node: onnx.NodeProto, weight: np.ndarray, mean_in: np.ndarray) -> np.ndarray:
    """The layer's output per channel for a constant input ``mean_in`` per channel (padding ignored)."""
    if node.op_type == "Gemm":
        return weight @ mean_in  # weights (out, in): transB=1, as _bias_sites requires
    groups = next((a.i for a in node.attribute if a.name == "group"), 1)
    out_ch, in_per_group = weight.shape[:2]
    per_tap = weight.reshape(out_ch, in_per_group, -1).sum(axis=2)  # (out, in/group)
    group_of = np.arange(out_ch) // (out_ch // groups)
    channels = group_of[:, None] * in_per_group + np.arange(in_per_group)[None]
    return (per_tap * mean_in[channels]).sum(axis=1)


class _Bias:
    """A layer's constant bias (a float initializer, or an int32 one behind a DequantizeLinear) and its
    dequantized int8 weights."""

    def __init__(self, node: onnx.NodeProto, init: onnx.TensorProto, scale: np.ndarray | None, weight):
        self.node, self.init, self.scale, self.weight = node, init, scale, weight

    def add(self, shift: np.ndarray) -> None:
        value = numpy_helper.to_array(self.init)
        if self.scale is None:
            value = (value + shift.astype(value.dtype)).astype(value.dtype)
        else:
            steps = np.round(shift / self.scale).astype(np.int64)
            info = np.iinfo(value.dtype)
            value = np.clip(value.astype(np.int64) + steps, info.min, info.max).astype(value.dtype)
        self.init.CopyFrom(numpy_helper.from_array(value, self.init.name))


def _bias_sites(model: onnx.ModelProto) -> dict[str, _Bias]:
    """Output tensor name -> its layer's bias, for every Conv/Gemm with a constant bias."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    sites = {}
    for node in graph.node:
        if node.op_type not in _LAYERS or len(node.input) < 3 or not node.input[2]:
            continue
        if node.op_type == "Gemm" and not any(a.name == "transB" and a.i == 1 for a in node.attribute):
            continue  # the bias runs along the output channels only with weights (out, in)
        weight = _dequantized(producers.get(node.input[1]), inits)
        name = node.input[2]
        if name in inits and inits[name].data_type == onnx.TensorProto.FLOAT:
            sites[node.output[0]] = _Bias(node, inits[name], None, weight)
            continue
        dq = producers.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits or dq.input[1] not in inits:
            continue
        if len(dq.input) > 2 and dq.input[2] in inits and numpy_helper.to_array(inits[dq.input[2]]).any():
            continue  # a non-zero bias zero point: not what ONNX Runtime writes, leave it
        sites[node.output[0]] = _Bias(node, inits[dq.input[0]], numpy_helper.to_array(inits[dq.input[1]]), weight)
    return sites


def _dequantized(dq: onnx.NodeProto | None, inits: dict) -> np.ndarray | None:
    """The float values of a DequantizeLinear of constant int8 weights (per tensor or per axis)."""
    if dq is None or dq.op_type != "DequantizeLinear" or any(i not in inits for i in dq.input):
        return None
    q = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float32)
    scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float32)
    zero = numpy_helper.to_array(inits[dq.input[2]]).astype(np.float32) if len(dq.input) > 2 else np.zeros(1)
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (q - zero) * scale


def _float_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Node name -> float weights of each Conv/Gemm whose weights are an initializer."""
    inits = {i.name: i for i in model.graph.initializer}
    return {n.name: numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
            for n in model.graph.node if n.op_type in _LAYERS and len(n.input) > 1 and n.input[1] in inits}


def _channel_means(model: onnx.ModelProto, names: list[str], calib: np.ndarray, batch: int,
                   static: bool) -> dict[str, np.ndarray]:
    """Mean of each named tensor per channel (axis 1) over ``calib``, with the tensors as extra outputs."""
    from edgekd.ort_session import ort_session  # heavy SDK: imported on first use

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    have = {o.name for o in probe.graph.output}
    wanted = [n for n in names if n not in have]
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in wanted)
    session = ort_session(probe.SerializeToString(), quiet=True)
    feed = session.get_inputs()[0].name
    sums: dict[str, np.ndarray] = {}
    count = 0
    for start in range(0, len(calib), batch):
        chunk = calib[start:start + batch].astype(np.float32)
        n = len(chunk)
        if static and n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), np.float32)])
        outs = session.run(names, {feed: chunk})
        for name, out in zip(names, outs):
            out = out[:n]
            axes = (0,) + tuple(range(2, out.ndim))
            sums[name] = sums.get(name, 0.0) + out.sum(axis=axes, dtype=np.float64) / max(
                1, int(np.prod([out.shape[a] for a in axes[1:]])))
        count += n
    return {name: (s / count).astype(np.float32) for name, s in sums.items()}
