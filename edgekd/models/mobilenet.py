"""MobileNetV2-style students: inverted residual blocks with expansion, kernel, width, depth."""

from __future__ import annotations

from torch import nn

from edgekd.models.registry import register_student
from edgekd.models.resnet import ACTIVATIONS, stem_layers

MOBILENET_OPS = frozenset({"conv", "depthwise_conv", "batchnorm", "relu6", "add", "global_avgpool", "linear"})


SE_OPS = frozenset({"global_avgpool", "conv", "relu", "hardsigmoid", "mul"})  # what squeeze-excite adds


class SqueezeExcite(nn.Module):
    """MobileNetV3's channel gate: pool → 1×1 reduce (¼) → ReLU → 1×1 expand → hard-sigmoid → scale."""

    def __init__(self, channels: int):
        super().__init__()
        squeezed = max(8, channels // 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce, self.expand = nn.Conv2d(channels, squeezed, 1), nn.Conv2d(squeezed, channels, 1)
        self.relu, self.gate = nn.ReLU(inplace=True), nn.Hardsigmoid()

    def forward(self, x):
        return x * self.gate(self.expand(self.relu(self.reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int, kernel: int, act: str = "relu6",
                 se: bool = False):
        super().__init__()
        hidden = cin * expansion
        layers = []
        if expansion != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), ACTIVATIONS[act](inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), ACTIVATIONS[act](inplace=True)]
        layers += [SqueezeExcite(hidden)] if se else []
        layers += [nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.body(x)
        return x + out if self.residual else out


class MobileNetV2Student(nn.Module):
    """stem conv → stages of inverted residuals → 1×1 head conv → GAP → linear."""

    def __init__(self, input_shape, num_classes, widths, depths, expansions, kernels, head: int, act: str = "relu6",
                 stem_stride: int | None = None, se=None):
        super().__init__()
        stem = widths[0]
        self.stem = stem_layers(input_shape[0], stem, stem_stride, input_shape, act)
        blocks, cin = [], stem
        se = se or (0,) * len(widths)
        for i, (width, depth, expansion, kernel) in enumerate(zip(widths, depths, expansions, kernels)):
            stage = [InvertedResidual(cin if j == 0 else width, width, 2 if (i > 0 and j == 0) else 1,
                                      expansion, kernel, act, bool(se[i])) for j in range(depth)]
            blocks.append(nn.Sequential(*stage) if stage else nn.Identity())
            cin = width if depth else cin
        self.stages = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(cin, head, 1, bias=False), nn.BatchNorm2d(head),
                                  ACTIVATIONS[act](inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(head, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.head(self.stages(self.stem(x))))))


@register_student("mobilenetv2", MOBILENET_OPS, "MobileNetV2-style CNN: expansion, kernel, width, depth")
def mobilenetv2(input_shape, num_classes, widths=(16, 24, 32), depths=(1, 2, 2), expansions=(1, 4, 4),
                kernels=(3, 3, 3), width_mult: float = 1.0, head: int = 128, act: str = "relu6",
                stem_stride: int | None = None, se=None):
    """``stem_stride``: 1, 2 or 4; None picks it from the input size (``resnet.stem_stride_for``).
    ``act="hardswish"`` and ``se`` (one 0/1 per stage: squeeze-excite in that stage's blocks) make
    MobileNetV3-style blocks; the search does not propose them (no latency profile prices them yet)."""
    n = len(widths)
    if not (len(depths) == len(expansions) == len(kernels) == n):
        raise ValueError("widths, depths, expansions and kernels need one entry per stage")
    if se is not None and (len(se) != n or any(v not in (0, 1, False, True) for v in se)):
        raise ValueError(f"se needs one 0 or 1 per stage ({n}), got {se!r}")
    if any(k not in (3, 5, 7) for k in kernels):
        raise ValueError(f"kernels must be 3, 5 or 7, got {kernels}")
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    widths = tuple(max(4, int(round(w * width_mult))) for w in widths)
    return MobileNetV2Student(input_shape, num_classes, widths, tuple(depths), tuple(expansions),
                              tuple(kernels), head, act, stem_stride, tuple(int(v) for v in se) if se else None)
