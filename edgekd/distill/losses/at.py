"""Attention transfer (Zagoruyko, Komodakis, ICLR 2017, arXiv 1612.03928)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekd.distill.losses.base import label_ce, register_loss
from edgekd.distill.losses.features import FeatureLoss, match_spatial


def attention_map(f: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Spatial attention: mean over channels of |f|^p, flattened and L2-normalized per sample."""
    return F.normalize(f.abs().pow(p).mean(1).flatten(1), dim=1)


@register_loss("at")
class AT(FeatureLoss):
    """L = ce_weight · CE + feat_weight · Σ_pairs mean((A(f_s) − A(f_t))²), A = attention_map (p = 2).

    No adapter is needed (attention maps have no channels); the student map is resized to the
    teacher's spatial size first. Default feat_weight = 1000 (the authors' code, β/2 folded in).
    """

    def __init__(self, layers=None, ce_weight: float = 1.0, feat_weight: float = 1000.0, num_stages: int = 2,
                 p: float = 2.0):
        super().__init__(layers, ce_weight, feat_weight, num_stages)
        self.p = p

    def extra_config(self):
        return {"p": self.p}

    def loss(self, student, teacher, batch):
        value = 0.0
        for _, fs, ft in self.pairs(student, teacher):
            fs = match_spatial(fs, ft.shape[2:])
            value = value + (attention_map(fs, self.p) - attention_map(ft, self.p)).pow(2).mean()
        terms = {"at": self.feat_weight * value}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * label_ce(student.logits, batch[1])
        return terms
