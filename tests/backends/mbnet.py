"""A 3×64×64 network with the operator mix of MobileNetV3 / EfficientNet-Lite, random but realistic weights.

Depthwise convolutions, squeeze-excite (sigmoid gate, ``mul``), ReLU6 and hard-swish, residual adds,
BatchNorm statistics from data (variance floored at its median), gamma 1-3, beta ~ N(0, 1), so
pre-activation ranges run well past ReLU6's [0, 6], as they do in pretrained ImageNet networks.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class SqueezeExcite(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.reduce, self.expand = nn.Conv2d(ch, max(4, ch // 4), 1), nn.Conv2d(max(4, ch // 4), ch, 1)

    def forward(self, x):
        s = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.expand(torch.relu(self.reduce(s))))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, act: type, se: bool):
        super().__init__()
        mid = cin * expand
        self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), act())
        self.dw = nn.Sequential(nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), act())
        self.se = SqueezeExcite(mid) if se else nn.Identity()
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


class MobileMix(nn.Module):
    def __init__(self, classes: int = 10):
        super().__init__()
        r6, hs = nn.ReLU6, nn.Hardswish
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), r6())
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 1, 1, r6, False), InvertedResidual(16, 24, 2, 4, r6, False),
                                    InvertedResidual(24, 24, 1, 4, r6, True), InvertedResidual(24, 40, 2, 4, hs, True),
                                    InvertedResidual(40, 40, 1, 4, hs, True))
        self.head = nn.Sequential(nn.Conv2d(40, 96, 1, bias=False), nn.BatchNorm2d(96), r6(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, classes))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


def images(n: int, seed: int = 0, size: int = 64) -> np.ndarray:
    """Smooth random RGB images (upsampled noise plus a gradient), roughly normalized."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 3, size // 8, size // 8, generator=g)
    x = nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False)
    x = x + 0.3 * torch.randn(n, 3, size, size, generator=g)
    return x.numpy().astype(np.float32)


def mobile_mix(seed: int = 0) -> MobileMix:
    """The network in eval mode, BatchNorm and classifier set as described above."""
    torch.manual_seed(seed)
    model = MobileMix().train()
    with torch.no_grad():
        bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for m in bns:
            m.momentum = None  # cumulative average over the batches below
        for i in range(4):
            model(torch.from_numpy(images(32, seed=100 + i)))
        g = torch.Generator().manual_seed(seed)
        for m in bns:  # a floor on the variance: a near-constant channel is not blown up to unit scale
            m.running_var.clamp_(min=float(m.running_var.median()))
            m.weight.copy_(1.0 + 2.0 * torch.rand(m.num_features, generator=g))
            m.bias.copy_(torch.randn(m.num_features, generator=g))
        model.eval()
        # classifier on the features' main directions of variation across images, as a trained one
        # would be: every class wins on some images, and logits are not noise-sized differences
        features = model.head[:-1](model.blocks(model.stem(torch.from_numpy(images(256, seed=200)))))
        centred = features - features.mean(0)
        _, sv, basis = torch.linalg.svd(centred, full_matrices=False)
        k, fc = 8, model.head[-1]
        mix = torch.randn(fc.out_features, k, generator=g)
        fc.weight.copy_(3.0 * mix @ (basis[:k] / (sv[:k, None] / len(features) ** 0.5)))
        fc.bias.copy_(-(fc.weight @ features.mean(0)))
    return model
