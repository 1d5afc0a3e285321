"""Zero-cost baselines on the same footing as DisWOT: one batch, the candidate at initialization.

NWOT (Mellor et al. 2021), SynFlow (Tanaka et al. 2020), SNIP (Lee et al. 2019) and GradNorm
(Abdelfattah et al. 2021), each summed over the convolution and linear weights as in the zero-cost
proxies paper. Every score works on a copy, so the candidate passed in is left untouched.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.search.scores.registry import ScoreContext, register_score

_WEIGHTED = (nn.Conv2d, nn.Linear)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, _WEIGHTED)]


def _ce_grads(ctx: ScoreContext, student: nn.Module):
    model = copy.deepcopy(student).train().requires_grad_(True)
    weights = _weights(model)
    loss = F.cross_entropy(model(ctx.x), ctx.y)
    return weights, torch.autograd.grad(loss, weights)


@register_score("nwot")
def nwot(ctx: ScoreContext, student: nn.Module) -> float:
    """log|K_H|, K_H the Hamming-similarity kernel of the batch's ReLU on/off codes."""
    model = copy.deepcopy(student).train()
    b = ctx.x.shape[0]
    kernel = torch.zeros(b, b, dtype=torch.float64)

    def hook(module, inputs, output):
        codes = (output.detach().flatten(1) > 0).double()
        kernel.add_(codes @ codes.T + (1 - codes) @ (1 - codes).T)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    try:
        with torch.no_grad():
            model(ctx.x)
    finally:
        for h in handles:
            h.remove()
    return float(torch.linalg.slogdet(kernel)[1])


@register_score("synflow")
def synflow(ctx: ScoreContext, student: nn.Module) -> float:
    """Σ|θ ⊙ ∂R/∂θ| with R the summed output of the |θ|-network on an all-ones input (float64)."""
    model = copy.deepcopy(student).double().eval().requires_grad_(True)
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    weights = _weights(model)
    out = model(torch.ones(1, *ctx.input_shape, dtype=torch.float64))
    grads = torch.autograd.grad(out.sum(), weights)
    total = sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads))
    return float(torch.log(total + 1e-300))  # log keeps the scale printable; ranking is unchanged


@register_score("snip")
def snip(ctx: ScoreContext, student: nn.Module) -> float:
    """Σ|θ ⊙ ∂L/∂θ| for the cross-entropy L of the batch."""
    weights, grads = _ce_grads(ctx, student)
    return float(sum((w.detach() * g).abs().sum() for w, g in zip(weights, grads)))


@register_score("gradnorm")
def gradnorm(ctx: ScoreContext, student: nn.Module) -> float:
    """Σ‖∂L/∂θ‖₂ over the weight tensors."""
    _, grads = _ce_grads(ctx, student)
    return float(sum(g.norm() for g in grads))
