"""Relational KD, distance- and angle-wise (Park, Kim, Lu, Cho, CVPR 2019, arXiv 1904.05068)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekd.distill.losses.base import label_ce, register_loss
from edgekd.distill.losses.features import FeatureLoss


def _embed(f: torch.Tensor) -> torch.Tensor:
    return f.mean((2, 3)) if f.ndim == 4 else f.flatten(1)


def rkd_distance(es: torch.Tensor, et: torch.Tensor) -> torch.Tensor:
    """Huber loss between pairwise distance matrices, each divided by its mean off-diagonal distance."""
    def normed(e):
        d = torch.cdist(e, e)
        off = d[~torch.eye(len(e), dtype=torch.bool, device=e.device)]
        return d / off.mean().clamp_min(1e-8)

    return F.smooth_l1_loss(normed(es), normed(et))


def rkd_angle(es: torch.Tensor, et: torch.Tensor) -> torch.Tensor:
    """Huber loss between the cosines of angles formed by every triplet of embeddings."""
    def angles(e):
        diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), dim=2)
        return torch.bmm(diff, diff.transpose(1, 2)).flatten()

    return F.smooth_l1_loss(angles(es), angles(et))


@register_loss("rkd")
class RKD(FeatureLoss):
    """L = ce_weight · CE + w_d · distance + w_a · angle, on globally pooled deepest-stage features.

    Defaults from the paper: w_d = 25, w_a = 50 (``feat_weight`` scales both), ce_weight = 1.
    """

    def __init__(self, layers=None, ce_weight: float = 1.0, feat_weight: float = 1.0, num_stages: int = 1,
                 distance_weight: float = 25.0, angle_weight: float = 50.0):
        super().__init__(layers, ce_weight, feat_weight, num_stages)
        self.distance_weight, self.angle_weight = distance_weight, angle_weight

    def extra_config(self):
        return {"distance_weight": self.distance_weight, "angle_weight": self.angle_weight}

    def loss(self, student, teacher, batch):
        dist = angle = 0.0
        for _, fs, ft in self.pairs(student, teacher):
            es, et = _embed(fs), _embed(ft)
            dist = dist + rkd_distance(es, et)
            angle = angle + rkd_angle(es, et)
        terms = {"rkd_distance": self.feat_weight * self.distance_weight * dist,
                 "rkd_angle": self.feat_weight * self.angle_weight * angle}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * label_ce(student.logits, batch[1])
        return terms
