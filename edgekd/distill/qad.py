"""Who teaches the quantization-aware phase (QAD): the float student itself, the teacher, or both.

TopKLD's setting distills a quantized model from its own full-precision model: after float
distillation, the float student is deep-copied and frozen, and its quantized twin learns from it.

- ``"self"``: the frozen float student (its own full-precision twin) is the QAT phase's teacher.
- ``"teacher"``: the big teacher, as in float distillation.
- ``"both"``: one teacher whose logits are ``w · z_self + (1 - w) · z_teacher`` (``w`` =
  ``self_weight``, default 0.5). At temperature T its softmax is the normalized geometric
  mixture ``p_self^w · p_teacher^(1-w)`` of the two teachers' tempered distributions, so every
  logit loss (KD, DKD, DIST, TopKLD) takes it unchanged and the label term is counted once.

Feature losses (FitNet, AT, SP, RKD, ...) pair student layers with the *big teacher's* layers, so
they can only be taught by ``"teacher"``; the default falls back to it for them (logged, recorded).

The default is ``"self"``: on Fashion-MNIST (bench/distill_qad.py, 2 seeds) TopKLD-QAD from self
beat CE-QAT by 0.7 points at W4A4 (both seeds), KD from self was >= CE-QAT at W4A8 and W4A4 in all
four runs, while the teacher and both were below CE-QAT on average. The margins are within the
seed-to-seed spread (0.5-1.2 points): a weak preference, not a proven win.
"""

from __future__ import annotations

import copy
import logging
from typing import Literal

from torch import nn

from edgekd.distill.losses.base import DistillLoss
from edgekd.distill.losses.features import FeatureLoss
from edgekd.errors import ConfigError

log = logging.getLogger(__name__)

QatTeacher = Literal["self", "teacher", "both"]
QAT_TEACHERS: tuple[str, ...] = ("self", "teacher", "both")
DEFAULT_QAT_TEACHER: QatTeacher = "self"  # bench/results/distill_qad.json: best at W4A4, KD-self >= CE-QAT at both
DEFAULT_SELF_WEIGHT = 0.5


class LogitBlend(nn.Module):
    """A teacher computing ``w · self_teacher(x) + (1 - w) · teacher(x)`` (see the module docstring)."""

    def __init__(self, self_teacher: nn.Module, teacher: nn.Module, self_weight: float = DEFAULT_SELF_WEIGHT):
        super().__init__()
        self.self_teacher, self.teacher, self.self_weight = self_teacher, teacher, float(self_weight)

    def forward(self, x):
        w = self.self_weight
        return w * self.self_teacher(x) + (1.0 - w) * self.teacher(x)


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode with ``requires_grad=False`` everywhere: gradients never reach it."""
    twin = copy.deepcopy(model).eval()
    twin.requires_grad_(False)
    return twin


def check_qat_teacher(choice: str | None, loss: DistillLoss | None = None, self_weight: float = DEFAULT_SELF_WEIGHT
                      ) -> None:
    """Refuse a bad choice before any training (unknown name, weight outside [0, 1], feature loss + self)."""
    if choice is not None and choice not in QAT_TEACHERS:
        raise ConfigError(f"qat_teacher={choice!r}: expected one of {', '.join(QAT_TEACHERS)}")
    if not 0.0 <= float(self_weight) <= 1.0:
        raise ConfigError(f"qat_self_weight={self_weight}: expected a weight in [0, 1]")
    if choice in ("self", "both") and loss is not None and _uses_features(loss):
        raise ConfigError(f"qat_teacher={choice!r} needs a logit loss; {type(loss).__name__} pairs layers with "
                          "the teacher's, use qat_teacher='teacher'")


def _uses_features(loss: DistillLoss) -> bool:
    return isinstance(loss, FeatureLoss) or bool(loss.feature_pairs)


def resolve(choice: str | None, loss: DistillLoss, teacher: nn.Module | None) -> str:
    """The choice that will run: None is the default, "teacher" for feature losses, "none" without a teacher."""
    check_qat_teacher(choice, loss)
    if not loss.needs_teacher or teacher is None and choice in (None, "teacher"):
        return "none" if not loss.needs_teacher else "teacher"
    if choice is None:
        if DEFAULT_QAT_TEACHER != "teacher" and _uses_features(loss):
            log.info("QAT teacher: %s uses features, so the teacher teaches the QAT phase", type(loss).__name__)
            return "teacher"
        return DEFAULT_QAT_TEACHER
    return choice


def qat_teacher_module(choice: str, float_student: nn.Module, teacher: nn.Module | None,
                       self_weight: float = DEFAULT_SELF_WEIGHT) -> nn.Module | None:
    """The module that teaches the QAT phase for a resolved ``choice`` (see :func:`resolve`)."""
    if choice in ("none", "teacher"):
        return teacher
    twin = frozen_copy(float_student)
    if choice == "self":
        return twin
    if teacher is None:
        raise ConfigError("qat_teacher='both' needs a teacher")
    return LogitBlend(twin, teacher, self_weight).eval().requires_grad_(False)
