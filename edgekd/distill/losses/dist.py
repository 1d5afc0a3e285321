"""DIST: knowledge distillation from a stronger teacher (Huang, You, Wang, Qian, Xu, NeurIPS 2022,
arXiv 2205.10536)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekd.distill.losses.base import DistillLoss, label_ce, register_loss


def _pearson_distance(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Mean over rows of 1 - Pearson correlation(a_i, b_i)."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    corr = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(eps)
    return (1 - corr).mean()


def dist_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(inter, intra): inter-class relation (per sample, across classes) and intra-class
    relation (per class, across the batch), each T² · (1 - Pearson)."""
    ps = F.softmax(student_logits / temperature, dim=1)
    pt = F.softmax(teacher_logits / temperature, dim=1)
    inter = _pearson_distance(ps, pt)
    intra = _pearson_distance(ps.t(), pt.t())
    return inter * temperature**2, intra * temperature**2


@register_loss("dist")
class DIST(DistillLoss):
    """L = ce_weight · CE + β · inter + γ · intra.

    Defaults (the paper's CIFAR recipe): β = 2, γ = 2, T = 4, ce_weight = 1.
    """

    def __init__(self, beta: float = 2.0, gamma: float = 2.0, temperature: float = 4.0, ce_weight: float = 1.0):
        super().__init__()
        self.beta, self.gamma, self.temperature, self.ce_weight = beta, gamma, temperature, ce_weight

    def loss(self, student, teacher, batch):
        inter, intra = dist_terms(student.logits, teacher.logits, self.temperature)
        terms = {"inter": self.beta * inter, "intra": self.gamma * intra}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * label_ce(student.logits, batch[1])
        return terms
