"""Bias correction of a PT2E-quantized graph (ExecuTorch/XNNPACK), as :mod:`edgekd.quant.bias_correction`
does for QDQ ONNX: each conv/linear's bias loses its mean weight-rounding error ``(W_q - W)·E[x]``.

The float weights are read from the prepared graph (after PT2E folded BatchNorm, before convert);
``E[x]`` is each layer's dequantized input, averaged per channel over the calibration data in the
converted graph. XNNPACK quantizes the float bias itself, so the corrected bias is what runs.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import fx

log = logging.getLogger(__name__)

_LAYERS = {torch.ops.aten.conv2d.default, torch.ops.aten.linear.default}


def float_weights(prepared: fx.GraphModule) -> dict[str, torch.Tensor]:
    """Layer node name -> its float weight, in a prepared (observed) PT2E graph."""
    out = {}
    for node in prepared.graph.nodes:
        if node.op != "call_function" or node.target not in _LAYERS:
            continue
        source = node.args[1]
        while isinstance(source, fx.Node) and source.op == "call_module":  # the weight's observer
            source = source.args[0]
        if isinstance(source, fx.Node) and source.op == "get_attr":
            out[node.name] = _attr(prepared, source.target).detach().clone()
    return out


def correct_biases(converted: fx.GraphModule, weights: dict[str, torch.Tensor], calib: np.ndarray,
                   batch: int = 1) -> dict:
    """Shift the float biases of ``converted`` (in place); returns the layers corrected and the mean |shift|."""
    layers = [n for n in converted.graph.nodes if n.op == "call_function" and n.target in _LAYERS
              and n.name in weights and len(n.args) > 2 and isinstance(n.args[2], fx.Node)
              and n.args[2].op == "get_attr"]
    if not layers:
        return {"layers": 0}
    means = _input_means(converted, {n.name for n in layers}, calib, batch)
    shifts = []
    for node in layers:
        quantized = _evaluate(converted, node.args[1])
        delta = (quantized - weights[node.name]).double()
        mean_in = means[node.name]
        if node.target == torch.ops.aten.linear.default:
            shift = -(delta @ mean_in)
        else:
            groups = node.args[6] if len(node.args) > 6 else 1
            out_ch, in_per_group = delta.shape[:2]
            per_tap = delta.reshape(out_ch, in_per_group, -1).sum(2)
            channels = (torch.arange(out_ch) // (out_ch // groups))[:, None] * in_per_group + torch.arange(in_per_group)
            shift = -(per_tap * mean_in[channels]).sum(1)
        bias = _attr(converted, node.args[2].target)
        with torch.no_grad():
            bias.add_(shift.to(bias.dtype))
        shifts.append(float(shift.abs().mean()))
    log.info("bias correction (PT2E): %d layers, mean |shift| %.4g", len(shifts), float(np.mean(shifts)))
    return {"layers": len(shifts), "mean_abs_shift": float(np.mean(shifts))}


def _input_means(gm: fx.GraphModule, names: set[str], calib: np.ndarray, batch: int) -> dict[str, torch.Tensor]:
    """Each named layer's first input, averaged per channel (dim 1) over ``calib``."""
    sums: dict[str, torch.Tensor] = {}
    count = 0

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            if n.name in names:
                x = self.env[n.args[0]].detach().double()
                dims = [0] + list(range(2, x.dim()))
                sums[n.name] = sums.get(n.name, 0) + x.mean(dim=dims) * x.shape[0]
            return super().run_node(n)

    recorder = Recorder(gm)
    with torch.no_grad():
        for i in range(0, len(calib) - batch + 1, batch):
            chunk = torch.from_numpy(calib[i:i + batch])
            recorder.run(chunk)
            count += len(chunk)
    return {k: v / count for k, v in sums.items()}


def _evaluate(gm: fx.GraphModule, node: fx.Node) -> torch.Tensor:
    """The value of a constant sub-expression (a dequantized weight) of ``gm``."""
    if node.op == "get_attr":
        return _attr(gm, node.target)
    args = [_evaluate(gm, a) if isinstance(a, fx.Node) else a for a in node.args]
    return node.target(*args, **node.kwargs)


def _attr(gm: torch.nn.Module, target: str) -> torch.Tensor:
    value = gm
    for part in target.split("."):
        value = getattr(value, part)
    return value
