"""TopKLD: top-k (explicit) vs tail (implicit) decomposition of the KD divergence.

Seed paper: arXiv 2501.06218 ("Dissecting Bit-Level Scaling Laws in Quantizing Vision Generative
Models") proposes TopKLD for quantized students. Its method section was not available to us, so
the formula below is **our reading**, not the paper's text.

With ``p = softmax(teacher / T)``, ``q = softmax(student / T)`` and ``K`` the teacher's top-k
classes per sample (``P = Σ_K p``, ``Q = Σ_K q``, ``p̂_K = p / P`` on K, ``p̂_¬K = p / (1-P)``
on the rest, and likewise for ``q``)::

    TopKLD = T² · [ KL([P, 1-P] ‖ [Q, 1-Q])          # how mass splits: explicit vs implicit
                    + α · KL(p̂_K ‖ q̂_K)              # shape inside the top-k (explicit knowledge)
                    + β · KL(p̂_¬K ‖ q̂_¬K) ]          # shape of the tail (implicit / dark knowledge)

By the chain rule of KL, ``KL(p‖q) = binary + P·KL_K + (1-P)·KL_¬K``; TopKLD replaces the
mass weights ``P`` and ``1-P`` by constants, so the tail keeps a fixed share of the gradient
however little mass it holds. With ``k = C`` (all classes) and ``β = 0, α = 1`` it is exactly
Hinton KD (tested).

Ablation knobs (our reading of what the paper's idea needs): ``k`` (how many classes count as
explicit knowledge), ``α`` and ``β`` (the explicit/implicit balance: ``β/α`` is the tail's share),
``γ`` (``mass_weight``, the binary "how much mass is explicit" term) and ``weighting``:
``"constant"`` (TopKLD) or ``"mass"`` (``α·P`` and ``β·(1-P)`` per sample: with α = β = γ = 1 this
is KD for every ``k``, tested), which isolates the effect of the constant weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekd.distill.losses.base import DistillLoss, label_ce, register_loss
from edgekd.errors import ConfigError

_NEG = -1e4  # a finite "minus infinity": exp underflows to 0 and 0·(finite) stays 0


def _masked_kl(zs: torch.Tensor, zt: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample KL between teacher and student distributions renormalized over ``mask``."""
    lps = F.log_softmax(zs.masked_fill(~mask, _NEG), dim=1)
    lpt = F.log_softmax(zt.masked_fill(~mask, _NEG), dim=1)
    pt = lpt.exp() * mask  # an empty mask gives p̂ = 0 everywhere, hence KL = 0
    return torch.where(mask, pt * (lpt - lps), torch.zeros_like(lps)).sum(1)


def _log_mass(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(z.masked_fill(~mask, _NEG), dim=1) - torch.logsumexp(z, dim=1)


def topkld(student_logits: torch.Tensor, teacher_logits: torch.Tensor, k: int, temperature: float = 4.0,
           alpha: float = 1.0, beta: float = 1.0, mass_weight: float = 1.0, weighting: str = "constant"
           ) -> torch.Tensor:
    """Batch mean of TopKLD (see the module docstring), including the T² factor."""
    if weighting not in ("constant", "mass"):
        raise ValueError(f"weighting={weighting!r}: expected 'constant' or 'mass'")
    zs, zt = student_logits / temperature, teacher_logits / temperature
    k = max(1, min(int(k), zt.shape[1]))
    top = zt.topk(k, dim=1).indices
    mask = torch.zeros_like(zt, dtype=torch.bool).scatter_(1, top, True)
    lms_in, lmt_in = _log_mass(zs, mask), _log_mass(zt, mask)
    lms_out, lmt_out = _log_mass(zs, ~mask), _log_mass(zt, ~mask)
    binary = lmt_in.exp() * (lmt_in - lms_in) + lmt_out.exp() * (lmt_out - lms_out)
    w_in, w_out = (lmt_in.exp(), lmt_out.exp()) if weighting == "mass" else (1.0, 1.0)
    total = mass_weight * binary + alpha * w_in * _masked_kl(zs, zt, mask)
    if beta:
        total = total + beta * w_out * _masked_kl(zs, zt, ~mask)
    return total.mean() * temperature**2


@register_loss("topkld")
class TopKLD(DistillLoss):
    """L = ce_weight · CE(s, y) + kd_weight · TopKLD(s, t; k, T, α, β).

    Defaults: k = 5, T = 1, α = 1, β = 1, γ = 1, constant weighting, ce_weight = 0.5, kd_weight = 0.5
    (KD's default temperature and weights, so TopKLD and KD compare at equal footing).
    """

    def __init__(self, k: int = 5, temperature: float = 1.0, alpha: float = 1.0, beta: float = 1.0,
                 ce_weight: float = 0.5, kd_weight: float = 0.5, mass_weight: float = 1.0,
                 weighting: str = "constant"):
        super().__init__()
        if weighting not in ("constant", "mass"):
            raise ConfigError(f"TopKLD weighting={weighting!r}: expected 'constant' or 'mass'")
        if int(k) < 1 or min(alpha, beta, mass_weight) < 0:
            raise ConfigError(f"TopKLD: k={k} must be >= 1 and alpha, beta, mass_weight >= 0")
        self.k, self.temperature, self.alpha, self.beta = k, temperature, alpha, beta
        self.ce_weight, self.kd_weight = ce_weight, kd_weight
        self.mass_weight, self.weighting = mass_weight, weighting

    def loss(self, student, teacher, batch):
        value = topkld(student.logits, teacher.logits, self.k, self.temperature, self.alpha, self.beta,
                       self.mass_weight, self.weighting)
        terms = {"topkld": self.kd_weight * value}
        if self.ce_weight:
            terms["ce"] = self.ce_weight * label_ce(student.logits, batch[1])
        return terms
