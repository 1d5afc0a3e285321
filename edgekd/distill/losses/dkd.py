"""Decoupled KD (Zhao, Cui, Song, Qiu, Liang, CVPR 2022, arXiv 2203.08679)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekd.distill.losses.base import UNLABELED, DistillLoss, label_ce, register_loss


def dkd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, target: torch.Tensor,
              temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(TCKD, NCKD), each batch-mean and multiplied by T².

    TCKD = KL([p_t, 1-p_t] ‖ [q_t, 1-q_t]) on the target class's binary split;
    NCKD = KL(p̂ ‖ q̂) over the non-target classes, renormalized (target logit masked out).
    """
    zs, zt = student_logits / temperature, teacher_logits / temperature
    gt = F.one_hot(target, zs.shape[1]).bool()
    ps, pt = F.softmax(zs, dim=1), F.softmax(zt, dim=1)
    bs = torch.stack([(ps * gt).sum(1), (ps * ~gt).sum(1)], 1).clamp_min(1e-8)
    bt = torch.stack([(pt * gt).sum(1), (pt * ~gt).sum(1)], 1).clamp_min(1e-8)
    tckd = (bt * (bt.log() - bs.log())).sum(1).mean()
    lps = F.log_softmax(zs - 1000.0 * gt, dim=1)
    lpt = F.log_softmax(zt - 1000.0 * gt, dim=1)
    nckd = (lpt.exp() * (lpt - lps)).sum(1).mean()
    return tckd * temperature**2, nckd * temperature**2


@register_loss("dkd")
class DKD(DistillLoss):
    """L = ce_weight · CE + α · TCKD + β · NCKD (both with T²).

    Defaults from the paper's CIFAR recipe: α = 1, β = 8, T = 4, ce_weight = 1 (its 20-epoch
    linear warm-up of the KD terms is left out). Unlabelled samples use the teacher's argmax
    as the target class.
    """

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, temperature: float = 4.0, ce_weight: float = 1.0):
        super().__init__()
        self.alpha, self.beta, self.temperature, self.ce_weight = alpha, beta, temperature, ce_weight

    def loss(self, student, teacher, batch):
        y = batch[1]
        target = torch.where(y == UNLABELED, teacher.logits.argmax(1), y)
        tckd, nckd = dkd_terms(student.logits, teacher.logits, target, self.temperature)
        terms = {"tckd": self.alpha * tckd, "nckd": self.beta * nckd}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * label_ce(student.logits, y)
        return terms
