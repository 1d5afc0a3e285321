"""Cost scores: multiply-accumulates and parameter count (bigger is taken as better, as baselines)."""

from __future__ import annotations

import torch
from torch import nn

from edgekd.search.scores.registry import register_score


def count_flops(model: nn.Module, input_shape) -> int:
    """Multiply-accumulates of one sample through the convolutions and linear layers."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output[0].numel() * k
        else:
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@register_score("flops")
def flops_score(ctx, student: nn.Module) -> float:
    return float(count_flops(student, ctx.input_shape))


@register_score("params")
def params_score(ctx, student: nn.Module) -> float:
    return float(count_params(student))
