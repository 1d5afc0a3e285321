"""Default teachers: an architecture per input size, trained by edgekd and cached on disk."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch
from torch import nn

from edgekd._io import atomic_write, cache_dir
from edgekd.errors import CheckpointError

log = logging.getLogger(__name__)


class TeacherCNN(nn.Module):
    """VGG-style CNN: two conv pairs with pooling, one wide conv, GAP, linear."""

    def __init__(self, input_shape=(1, 28, 28), num_classes: int = 10, width: int = 32):
        super().__init__()
        c, w = input_shape[0], width

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(c, w), *block(w, w), nn.MaxPool2d(2),
            *block(w, 2 * w), *block(2 * w, 2 * w), nn.MaxPool2d(2),
            *block(2 * w, 4 * w),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * w, num_classes)

    def forward(self, x):
        return self.fc(self.flatten(self.pool(self.features(x))))


def default_teacher(input_shape, num_classes: int) -> nn.Module:
    return TeacherCNN(tuple(input_shape), num_classes)


def teacher_cache_path(dataset: str, arch: str, seed: int, recipe: dict) -> Path:
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]
    safe = dataset.replace("/", "_").replace(":", "_")
    return cache_dir() / "teachers" / f"{safe}-{arch}-seed{seed}-{digest}.pt"


def load_cached_teacher(model: nn.Module, path: Path) -> dict | None:
    """Load weights into ``model`` if ``path`` exists; returns its metadata or None."""
    if not path.exists():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(blob["model"])
    except Exception as exc:  # noqa: BLE001 - any unreadable cache file is the same problem
        raise CheckpointError(f"{path}: cached teacher is unreadable ({exc}); delete it to retrain") from exc
    log.info("loaded cached teacher %s", path)
    return json.loads(blob["meta"])


def save_cached_teacher(model: nn.Module, path: Path, meta: dict) -> None:
    blob = {"model": model.state_dict(), "meta": json.dumps(meta)}
    atomic_write(path, lambda p: torch.save(blob, p))
