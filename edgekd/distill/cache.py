"""Teacher-output caching: one teacher forward over the transfer set instead of one per epoch.

Valid only when the teacher is frozen (eval mode, no grad) and the inputs the student sees are
exactly the stored ones (no augmentation); the trainer checks both. Features named by the loss
are cached too, unless the cache would exceed ``max_mb``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from edgekd.data.sources import ArrayData
from edgekd.distill.device import model_device
from edgekd.distill.hooks import capture_features
from edgekd.distill.losses.base import ModelOutput

log = logging.getLogger(__name__)


class TeacherCache:
    """Logits (and hooked features) of a frozen teacher for every sample of ``data``."""

    def __init__(self, teacher: nn.Module, data: ArrayData, layers=(), batch_size: int = 512):
        self.teacher, self.data, self.layers = teacher, data, tuple(layers)
        logits, feats = [], {name: [] for name in self.layers}
        teacher.eval()
        device = model_device(teacher)  # computed where the teacher is, kept on the CPU beside the data
        with torch.no_grad(), capture_features(teacher, self.layers) as store:
            for i in range(0, len(data), batch_size):
                logits.append(teacher(data.x[i : i + batch_size].to(device)).cpu())
                for name in self.layers:
                    feats[name].append(store[name].cpu().clone())
        self.logits = torch.cat(logits)
        self.features = {name: torch.cat(parts) for name, parts in feats.items()}

    @staticmethod
    def estimate_mb(teacher: nn.Module, data: ArrayData, layers=()) -> float:
        with torch.no_grad(), capture_features(teacher.eval(), tuple(layers)) as store:
            out = teacher(data.x[:1].to(model_device(teacher)))
        per_sample = out.numel() + sum(t.numel() for t in store.values())
        return per_sample * 4 * len(data) / 2**20

    def matches(self, teacher: nn.Module, data: ArrayData, layers) -> bool:
        return teacher is self.teacher and data.x is self.data.x and set(layers) <= set(self.layers)

    def lookup(self, index: torch.Tensor) -> ModelOutput:
        return ModelOutput(self.logits[index], {k: v[index] for k, v in self.features.items()})


def maybe_cache(teacher, data: ArrayData, layers, augment: bool, max_mb: float) -> TeacherCache | None:
    """A cache when it is valid and fits ``max_mb``; None (live teacher forwards) otherwise."""
    if teacher is None or augment or max_mb <= 0:
        return None
    size = TeacherCache.estimate_mb(teacher, data, layers)
    if size > max_mb:
        log.info("teacher cache would take %.0f MB > %.0f MB; running the teacher every step", size, max_mb)
        return None
    # a batch of ~4 M input values: 512 digits at once, but 24 rather than 512 photos at 240 px
    # (a 512-photo batch through an ImageNet teacher holds many GB of activations)
    batch = int(max(8, min(512, 2**22 // max(1, int(np.prod(data.input_shape))))))
    return TeacherCache(teacher, data, layers, batch_size=batch)
