"""Cross-entropy on the labels only: the no-distillation baseline."""

from __future__ import annotations

from edgekd.distill.losses.base import DistillLoss, label_ce, register_loss


@register_loss("ce")
class CE(DistillLoss):
    """L = CE(student logits, labels). The baseline every KD loss is compared with.

    Samples labelled ``UNLABELED`` (-1) are ignored, so a label-scarce transfer set trains on its labels.
    """

    needs_teacher = False

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    def loss(self, student, teacher, batch):
        return {"ce": label_ce(student.logits, batch[1], self.label_smoothing)}
