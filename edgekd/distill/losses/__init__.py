"""Distillation losses: one file each, one interface (:class:`DistillLoss`), one registry."""

from edgekd.distill.losses.base import DistillLoss, ModelOutput, create_loss, list_losses, register_loss
from edgekd.distill.losses.ce import CE
from edgekd.distill.losses.kd import KD, kd_kl

__all__ = ["CE", "DistillLoss", "KD", "ModelOutput", "create_loss", "kd_kl", "list_losses", "register_loss"]
