"""Cross-entropy on the labels only: the no-distillation baseline."""

from __future__ import annotations

import torch.nn.functional as F

from edgekd.distill.losses.base import DistillLoss, register_loss


@register_loss("ce")
class CE(DistillLoss):
    """L = CE(student logits, labels). The baseline every KD loss is compared with."""

    needs_teacher = False

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def loss(self, student, teacher, batch):
        return {"ce": F.cross_entropy(student.logits, batch[1], label_smoothing=self.label_smoothing)}
