"""Fake quantization with a straight-through estimator and LSQ learnable scales.

LSQ (Esser, McKinley, Bablani, Appuswamy, Modha, ICLR 2020, arXiv 1902.08153): the scale ``s``
is a parameter; its gradient is multiplied by ``g = 1 / sqrt(N · Qp)`` (N: elements the scale
covers per sample, Qp: the grid's positive end). Rounding passes gradients straight through;
clamping zeroes them outside the grid. Values are those of ONNX QuantizeLinear (round half to
even of ``x / s``, then the zero point). Scales start from calibration (min/max, as the runtimes'
own calibrators do); zero points are fixed integers from calibration, so the exported model holds
exactly the grid trained here.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekd.quant.formats import QuantSpec

_MIN_SCALE = 1e-8


def grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """Value of ``x``, gradient times ``g``."""
    return (x - x * g).detach() + x * g


def fp16_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to fp16 forward, identity backward."""
    return x + (x.half().float() - x).detach()


INT32_BIAS_BOUND = 2**30  # |bias| / (s_in·s_w) stays below this: int32 with headroom for the accumulator


def bias_grid(bias: torch.Tensor, act_scale: torch.Tensor, weight_scale: torch.Tensor,
              per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight scale, bias scale) as integer runtimes store them: the bias as int32 at ``s_in·s_w``.

    ONNX Runtime rewrites a float bias of a QDQ Conv/Gemm as ``round(b / (s_in·s_w))`` in int32
    (float32 product, as here). A dead channel's near-zero ``s_w`` would push that out of int32, so
    ``s_w`` is floored to keep ``|b| / (s_in·s_w) <= 2**30``; only an all-zero channel ever hits it.
    """
    floor = bias.detach().abs() / (act_scale * INT32_BIAS_BOUND)
    weight_scale = torch.maximum(weight_scale, floor if per_channel else floor.max())
    return weight_scale, act_scale * weight_scale


def quantize_bias(bias: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``bias`` on the int32 grid of ``scale`` forward, identity backward (the scale gets no gradient)."""
    return bias + (torch.round(bias / scale.detach()) * scale.detach() - bias).detach()


class FakeQuant(nn.Module):
    """One quantizer. Before calibration it observes min/max and passes values through.

    Args:
        spec: the integer grid and sharing (see :class:`QuantSpec`).
        channels: number of scales when ``spec.per_channel`` (axis 0 of the tensor).
        weight: quantizes a weight (LSQ's N is then the elements per scale, not per sample).
    """

    def __init__(self, spec: QuantSpec, channels: int = 1, weight: bool = False):
        super().__init__()
        self.spec, self.weight = spec, weight
        n = channels if spec.per_channel else 1
        self.scale = nn.Parameter(torch.ones(n))
        self.register_buffer("zero_point", torch.zeros(n))
        self.register_buffer("calibrated", torch.tensor(False))
        self.register_buffer("observed", torch.tensor([math.inf, -math.inf]))

    def extra_repr(self) -> str:
        s = self.spec
        if s.kind != "int":
            return s.kind
        return f"{s.kind}{s.bits} [{s.qmin}, {s.qmax}] {'sym' if s.symmetric else 'asym'}" + \
            (" per-channel" if s.per_channel else "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.kind == "fp16":
            if torch.onnx.is_in_onnx_export():  # the fp16 engine rounds activations itself; weights fold
                return x.half().float() if self.weight else x
            return fp16_ste(x)
        if self.spec.kind != "int":
            return x
        if not bool(self.calibrated):
            self._observe(x)
            return x
        shape = (-1,) + (1,) * (x.ndim - 1) if self.spec.per_channel else ()
        n = x.numel() if self.weight and not self.spec.per_channel else x[0].numel()
        s = grad_scale(self.scale.clamp_min(_MIN_SCALE), 1.0 / math.sqrt(n * self.spec.qmax)).reshape(shape)
        z = self.zero_point.reshape(shape)
        u = x / s
        # value as ONNX QuantizeLinear: round(x / s) + z. Rounding u + z instead differs at ties: in
        # float32, u = k + 0.5 + tiny plus z = -128 lands exactly on a .5 and then rounds to even
        grid = torch.clamp(torch.round(u) + z, self.spec.qmin, self.spec.qmax)
        v = torch.clamp(u + z, self.spec.qmin, self.spec.qmax)  # gradients: STE inside the grid, 0 outside
        return (v + (grid - v).detach() - z) * s

    @torch.no_grad()
    def _observe(self, x: torch.Tensor) -> None:
        self.observed[0] = min(self.observed[0].item(), x.min().item())
        self.observed[1] = max(self.observed[1].item(), x.max().item())

    @torch.no_grad()
    def init_from_range(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        """Set scale (and zero point) so that [lo, hi] ∪ {0} fits the grid, as min/max calibration."""
        lo, hi = torch.minimum(lo, torch.zeros_like(lo)), torch.maximum(hi, torch.zeros_like(hi))
        q = self.spec
        if q.symmetric:
            scale = torch.maximum(hi, -lo) / q.qmax
            zero = torch.zeros_like(scale)
        else:
            scale = (hi - lo) / (q.qmax - q.qmin)
            zero = torch.clamp(torch.round(q.qmin - lo / scale.clamp_min(_MIN_SCALE)), q.qmin, q.qmax)
        self.scale.copy_(scale.clamp_min(_MIN_SCALE).reshape(self.scale.shape))
        self.zero_point.copy_(zero.reshape(self.zero_point.shape))
        self.calibrated.fill_(True)

    def init_weights(self, w: torch.Tensor) -> None:
        flat = w.detach().flatten(1) if self.spec.per_channel else w.detach().flatten()[None]
        self.init_from_range(flat.min(1).values, flat.max(1).values)

    def finish_calibration(self) -> bool:
        """Turn observed min/max into scale and zero point; False when nothing was observed."""
        if self.spec.kind != "int" or bool(self.calibrated):
            return True
        if not math.isfinite(self.observed[0].item()):
            return False
        self.init_from_range(self.observed[:1].clone(), self.observed[1:].clone())
        return True

    def export_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, integer zero point) as the exported QDQ nodes will hold them."""
        return self.scale.detach().clamp_min(_MIN_SCALE).float(), self.zero_point.detach().round()
