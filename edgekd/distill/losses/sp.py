"""Similarity-preserving KD (Tung, Mori, ICCV 2019, arXiv 1907.09682)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekd.distill.losses.base import label_ce, register_loss
from edgekd.distill.losses.features import FeatureLoss


def similarity(f: torch.Tensor) -> torch.Tensor:
    """Row-normalized batch similarity matrix G = normalize(F Fᵀ), F = features flattened per sample."""
    flat = f.flatten(1)
    return F.normalize(flat @ flat.t(), dim=1)


@register_loss("sp")
class SP(FeatureLoss):
    """L = ce_weight · CE + feat_weight · Σ_pairs ‖G_s − G_t‖²_F / b².

    Needs no adapter: the b×b similarity matrices match whatever the channel counts.
    Default feat_weight γ = 3000 (the paper's CIFAR setting), on the deepest stage only.
    """

    def __init__(self, layers=None, ce_weight: float = 1.0, feat_weight: float = 3000.0, num_stages: int = 1):
        super().__init__(layers, ce_weight, feat_weight, num_stages)

    def loss(self, student, teacher, batch):
        value = 0.0
        for _, fs, ft in self.pairs(student, teacher):
            b = fs.shape[0]
            value = value + (similarity(fs) - similarity(ft)).pow(2).sum() / (b * b)
        terms = {"sp": self.feat_weight * value}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * label_ce(student.logits, batch[1])
        return terms
