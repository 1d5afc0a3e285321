"""Fake quantization with a straight-through estimator and LSQ learnable scales.

LSQ (Esser, McKinley, Bablani, Appuswamy, Modha, ICLR 2020, arXiv 1902.08153): the scale ``s``
is a parameter; its gradient is multiplied by ``g = 1 / sqrt(N · Qp)`` (N: elements the scale
covers per sample, Qp: the grid's positive end). Rounding passes gradients straight through;
clamping zeroes them outside the grid. Scales start from calibration (min/max, as the runtimes'
own calibrators do); zero points are fixed integers from calibration, so the exported model holds
exactly the grid trained here.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekd.quant.formats import QuantSpec

_MIN_SCALE = 1e-8


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half to even (as ONNX QuantizeLinear) forward, identity backward."""
    return x + (torch.round(x) - x).detach()


def grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """Value of ``x``, gradient times ``g``."""
    return (x - x * g).detach() + x * g


def fp16_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (x.half().float() - x).detach()


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
        return f"{s.kind}{s.bits} [{s.qmin}, {s.qmax}] {'sym' if s.symmetric else 'asym'}" + \
            (" per-channel" if s.per_channel else "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.kind == "fp16":
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
        v = round_ste(torch.clamp(x / s + z, self.spec.qmin, self.spec.qmax))
        return (v - z) * s

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
