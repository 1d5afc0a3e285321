"""Distillation losses: one file each, one interface (:class:`DistillLoss`), one registry."""

from edgekd.distill.losses.at import AT
from edgekd.distill.losses.base import (UNLABELED, DistillLoss, ModelOutput, create_loss, label_ce, list_losses,
                                        register_loss)
from edgekd.distill.losses.ce import CE
from edgekd.distill.losses.dist import DIST
from edgekd.distill.losses.dkd import DKD
from edgekd.distill.losses.fitnet import FitNet
from edgekd.distill.losses.kd import KD, kd_kl
from edgekd.distill.losses.rkd import RKD
from edgekd.distill.losses.sp import SP
from edgekd.distill.losses.topkld import TopKLD, topkld

__all__ = ["AT", "CE", "DIST", "DKD", "DistillLoss", "FitNet", "KD", "ModelOutput", "RKD", "SP", "TopKLD",
           "UNLABELED", "create_loss", "kd_kl", "label_ce", "list_losses", "register_loss", "topkld"]
