"""ResNet-style students: basic residual blocks, depth and width per stage."""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

from edgekd.models.registry import register_student

RESNET_OPS = frozenset({"conv", "batchnorm", "relu", "add", "global_avgpool", "linear"})
# op name -> module; the search picks what a target runs (hard-swish: MobileNetV3's, opt-in, not searched)
ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish}


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, relu: bool = True,
                 act: str = "relu"):
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(ACTIVATIONS[act](inplace=True))
    return nn.Sequential(*layers)


STEM_STRIDES = (1, 2, 4)


def stem_stride_for(input_shape) -> int:
    """ImageNet-style early downsampling for large inputs: none below 64 px, 2× below 128 px, else 4×.

    At 224×224 a stride-1 stem would run every stage at full resolution, slower than most teachers."""
    side = min(input_shape[1:])
    return 1 if side < 64 else 2 if side < 128 else 4


def stem_layers(cin: int, cout: int, stride: int | None, input_shape, act: str) -> nn.Module:
    """The stem: one 3×3 conv (stride 1 or 2), or two stride-2 3×3 convs for 4× (no pooling op needed)."""
    stride = stem_stride_for(input_shape) if stride is None else stride
    if stride not in STEM_STRIDES:
        raise ValueError(f"stem_stride must be one of {STEM_STRIDES} or None (by input size), got {stride!r}")
    if stride == 4:
        return nn.Sequential(conv_bn_relu(cin, cout, 3, 2, act=act), conv_bn_relu(cout, cout, 3, 2, act=act))
    return conv_bn_relu(cin, cout, 3, stride, act=act)


class StridedPointwise(nn.Conv2d):
    """A 1×1 strided conv that trains as subsample-then-stride-1 conv: the same output and weights, but
    not oneDNN's strided 1×1 backward-weights kernel, which writes past its workspace when the input
    has fewer channels than its block (oneDNN issue #6035: segfaults, or silently wrong gradients;
    a 240 px build with a 4-channel stage crashed here). Eval and export keep the plain strided conv."""

    def forward(self, x):
        if not self.training or self.stride == (1, 1):
            return super().forward(x)
        sh, sw = self.stride
        return F.conv2d(x[:, :, ::sh, ::sw], self.weight, self.bias, 1, 0, self.dilation, self.groups)


def shortcut_conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    """The projection shortcut: a 1×1 conv (strided where the block downsamples) and BatchNorm."""
    return nn.Sequential(StridedPointwise(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, act: str = "relu"):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(cin, cout, 3, stride, act=act),
                                  conv_bn_relu(cout, cout, 3, 1, relu=False))
        self.shortcut = (nn.Identity() if stride == 1 and cin == cout
                         else shortcut_conv(cin, cout, stride))
        self.relu = ACTIVATIONS[act](inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class ResNetStudent(nn.Module):
    """stem conv → stages of BasicBlocks (first block of stages 2+ downsamples) → GAP → linear."""

    def __init__(self, input_shape, num_classes, depths=(1, 1, 1), widths=(16, 32, 64), stem: int | None = None,
                 act: str = "relu", stem_stride: int | None = None):
        super().__init__()
        if len(depths) != len(widths):
            raise ValueError("depths and widths need one entry per stage")
        stem = stem or widths[0]
        self.stem = stem_layers(input_shape[0], stem, stem_stride, input_shape, act)
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
           act: str = "relu", stem_stride: int | None = None):
    """``stem_stride``: 1, 2 or 4; None picks it from the input size (:func:`stem_stride_for`)."""
    if act not in ACTIVATIONS:
        raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, got {act!r}")
    widths = tuple(max(4, int(round(w * width_mult))) for w in widths)
    return ResNetStudent(input_shape, num_classes, tuple(depths), widths, act=act, stem_stride=stem_stride)
