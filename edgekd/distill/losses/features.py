"""Shared machinery of feature-based losses: default layer pairing by stage, and adapters.

Features are taken with forward hooks by module name (:mod:`edgekd.distill.hooks`); models are
never asked to return feature dicts. Without user-named layers, each model is cut into *stages*
(the last module producing each spatial resolution of a 4-D feature map) and the deepest stages
of student and teacher are paired, deepest with deepest.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.distill.hooks import capture_features
from edgekd.distill.losses.base import DistillLoss
from edgekd.errors import ConfigError

def stage_outputs(model: nn.Module, example: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """``[(module name, output shape)]``: the last module to finish at each spatial resolution.

    Hooks fire when a module's forward returns, so the store's insertion order is completion
    order and an enclosing block (a stage ``Sequential``) wins over its children. 1×1 maps
    (global pooling) are not stages.
    """
    names = [n for n, _ in model.named_modules() if n]
    was_training = model.training
    model.eval()
    with torch.no_grad(), capture_features(model, names) as feats:
        model(example)
    model.train(was_training)
    order, last = [], {}
    for name, out in feats.items():
        if isinstance(out, torch.Tensor) and out.ndim == 4 and out.shape[2] * out.shape[3] > 1:
            size = tuple(out.shape[2:])
            if size not in last:
                order.append(size)
            last[size] = (name, tuple(out.shape[1:]))
    return [last[size] for size in order]


def default_pairs(student: nn.Module, teacher: nn.Module, example: torch.Tensor,
                  count: int = 2) -> tuple[tuple[str, str], ...]:
    """Pair the deepest ``count`` stages of student and teacher (deepest with deepest)."""
    s_stages, t_stages = stage_outputs(student, example), stage_outputs(teacher, example)
    n = min(count, len(s_stages), len(t_stages))
    if n == 0:
        raise ConfigError("feature distillation: no 4-D feature maps found in student or teacher; "
                          "name the layers with layers=[(student_layer, teacher_layer)]")
    return tuple((s_stages[-n + i][0], t_stages[-n + i][0]) for i in range(n))


def feature_shapes(model: nn.Module, names, example: torch.Tensor) -> list[tuple[int, ...]]:
    was_training = model.training
    model.eval()
    with torch.no_grad(), capture_features(model, list(names)) as feats:
        model(example)
    model.train(was_training)
    return [tuple(feats[n].shape[1:]) for n in names]


def match_spatial(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Resize a 4-D map to ``size`` (H, W) with adaptive average pooling or bilinear upsampling."""
    if x.ndim != 4 or tuple(x.shape[2:]) == tuple(size):
        return x
    if x.shape[2] >= size[0] and x.shape[3] >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class FeatureLoss(DistillLoss):
    """Base of losses on hooked features. ``layers``: ``[(student_layer, teacher_layer)]`` or None.

    ``bind`` resolves the default pairing when ``layers`` is None and calls :meth:`build_adapters`
    with the feature shapes, so subclasses can create learned adapters before the optimizer exists.
    """

    def __init__(self, layers=None, ce_weight: float = 1.0, feat_weight: float = 1.0, num_stages: int = 2):
        super().__init__()
        self.layers = tuple(tuple(p) for p in layers) if layers else None
        self.ce_weight, self.feat_weight, self.num_stages = ce_weight, feat_weight, num_stages
        self.feature_pairs = self.layers or ()

    def config(self) -> dict:
        return {"layers": self.layers, "ce_weight": self.ce_weight, "feat_weight": self.feat_weight,
                "num_stages": self.num_stages, **self.extra_config()}

    def extra_config(self) -> dict:
        return {}

    def bind(self, student, teacher, example):
        if teacher is None:
            raise ConfigError(f"{type(self).__name__} needs a teacher")
        pairs = self.layers or default_pairs(student, teacher, example, self.num_stages)
        self.feature_pairs = tuple(pairs)
        s_shapes = feature_shapes(student, [s for s, _ in pairs], example)
        t_shapes = feature_shapes(teacher, [t for _, t in pairs], example)
        self.build_adapters(s_shapes, t_shapes)

    def build_adapters(self, s_shapes, t_shapes) -> None:
        """Create learned adapters; the default needs none."""

    def pairs(self, student, teacher):
        """Yield ``(index, student_feature, teacher_feature)`` for every bound pair."""
        if not self.feature_pairs:
            raise ConfigError(f"{type(self).__name__}: no feature pairs; the trainer calls bind() first")
        for i, (s, t) in enumerate(self.feature_pairs):
            yield i, student.features[s], teacher.features[t]
