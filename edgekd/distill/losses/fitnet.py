"""FitNets hints (Romero, Ballas, Kahou, Chassang, Gatta, Bengio, ICLR 2015, arXiv 1412.6550)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from edgekd.distill.losses.base import label_ce, register_loss
from edgekd.distill.losses.features import FeatureLoss, match_spatial


@register_loss("fitnet")
class FitNet(FeatureLoss):
    """L = ce_weight · CE + feat_weight · Σ_pairs MSE(r(f_s), f_t).

    ``r`` is a learned 1×1 conv regressor where channel counts differ (identity where equal);
    spatial sizes are matched by pooling/interpolating the student map. The paper trains the
    hint stage first; here hints and CE are trained jointly (mdistiller's recipe), feat_weight = 1.
    """

    def build_adapters(self, s_shapes, t_shapes):
        self.adapters = nn.ModuleList(
            nn.Identity() if s[0] == t[0] else nn.Conv2d(s[0], t[0], 1, bias=False)
            for s, t in zip(s_shapes, t_shapes))

    def loss(self, student, teacher, batch):
        hint = 0.0
        for i, fs, ft in self.pairs(student, teacher):
            hint = hint + F.mse_loss(match_spatial(self.adapters[i](fs), ft.shape[2:]), ft)
        terms = {"hint": self.feat_weight * hint}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * label_ce(student.logits, batch[1])
        return terms
