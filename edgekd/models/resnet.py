"""ResNet-style students: basic residual blocks, depth and width per stage."""

from __future__ import annotations

from torch import nn

from edgekd.models.registry import register_student

RESNET_OPS = frozenset({"conv", "batchnorm", "relu", "add", "global_avgpool", "linear"})
ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}  # op name -> module; the search picks what a target runs


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, relu: bool = True,
                 act: str = "relu"):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(ACTIVATIONS[act](inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, act: str = "relu"):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(cin, cout, 3, stride, act=act),
                                  conv_bn_relu(cout, cout, 3, 1, relu=False))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else conv_bn_relu(cin, cout, 1, stride, relu=False))
        self.relu = ACTIVATIONS[act](inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class ResNetStudent(nn.Module):
    """stem conv → stages of BasicBlocks (first block of stages 2+ downsamples) → GAP → linear."""

    def __init__(self, input_shape, num_classes, depths=(1, 1, 1), widths=(16, 32, 64), stem: int | None = None,
                 act: str = "relu"):
        super().__init__()
        if len(depths) != len(widths):
            raise ValueError("depths and widths need one entry per stage")
        stem = stem or widths[0]
        self.stem = conv_bn_relu(input_shape[0], stem, 3, 1, act=act)
        blocks, cin = [], stem
        for i, (depth, width) in enumerate(zip(depths, widths)):
            stage = [BasicBlock(cin if j == 0 else width, width, 2 if (i > 0 and j == 0) else 1, act)
                     for j in range(depth)]
            blocks.append(nn.Sequential(*stage) if stage else nn.Identity())
            cin = width if depth else cin
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.stages(self.stem(x)))))


@register_student("resnet", RESNET_OPS, "ResNet-style CNN: depth and width per stage")
def resnet(input_shape, num_classes, depths=(1, 1, 1), widths=(16, 32, 64), width_mult: float = 1.0,
           act: str = "relu"):
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    widths = tuple(max(4, int(round(w * width_mult))) for w in widths)
    return ResNetStudent(input_shape, num_classes, tuple(depths), widths, act=act)
