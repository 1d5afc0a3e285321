"""The common interface of every distillation loss, and the loss registry."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.registry import Registry


@dataclass
class ModelOutput:
    """What a forward pass gave: logits, plus hooked intermediate features by module name."""

    logits: torch.Tensor
    features: dict[str, torch.Tensor] = field(default_factory=dict)


class DistillLoss(nn.Module):
    """Base of all losses. Subclasses implement :meth:`loss` and return named, weighted terms.

    The trainer sums the returned terms; it never branches on the loss type. A loss that needs
    intermediate features lists ``(student_layer, teacher_layer)`` module names in
    ``feature_pairs``; the trainer hooks them and fills ``ModelOutput.features``.
    Being an ``nn.Module`` lets a loss own learned adapters that the optimizer trains.
    """

    needs_teacher: bool = True
    feature_pairs: tuple[tuple[str, str], ...] = ()

    def loss(self, student: ModelOutput, teacher: ModelOutput | None, batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def bind(self, student: nn.Module, teacher: nn.Module | None, example: torch.Tensor) -> None:
        """Called once by the trainer before the optimizer is built: resolve layers, build adapters."""

    def forward(self, student: ModelOutput, teacher: ModelOutput | None, batch) -> dict[str, torch.Tensor]:
        return self.loss(student, teacher, batch)

    def config(self) -> dict:
        """The constructor arguments, for reports and checkpoint fingerprints."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "training"}


UNLABELED = -1  # label value of transfer-set samples without a label (label-scarce training)


def label_ce(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy over the labelled samples only; exactly 0 (with a graph) when none is labelled."""
    mask = labels != UNLABELED
    if not bool(mask.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[mask], labels[mask], label_smoothing=label_smoothing)


LOSSES: Registry[type[DistillLoss]] = Registry("loss")


def register_loss(name: str):
    def wrap(cls):
        LOSSES.add(name, cls)
        cls.registry_name = name
        return cls

    return wrap


def list_losses() -> list[str]:
    return LOSSES.names()


def create_loss(name: str, **kwargs) -> DistillLoss:
    return LOSSES.get(name)(**kwargs)
