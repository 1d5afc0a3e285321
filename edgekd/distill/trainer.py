"""The training loop shared by teacher training and distillation.

Seeded and resumable: the data order and augmentation of epoch ``e`` depend only on
``(seed, e)``, so a run resumed from the checkpoint of epoch ``e`` continues exactly as
an uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from edgekd.data.sources import ArrayData
from edgekd.distill.checkpoint import load_checkpoint, save_checkpoint
from edgekd.distill.hooks import capture_features
from edgekd.distill.losses.base import DistillLoss, ModelOutput
from edgekd.errors import CheckpointError, EdgeKDError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``augment`` shifts images by up to ``shift`` pixels (edge-replicated)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    augment: bool = False
    shift: int = 2
    checkpoint: str | None = None  # path of the rolling checkpoint; None: no checkpoints
    resume: bool = False
    progress: bool = True


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict]
    resumed_from_epoch: int = 0


def evaluate(model: nn.Module, data: ArrayData, batch_size: int = 512) -> float:
    """Top-1 accuracy in [0, 1] of a torch model in eval mode."""
    logits = predict(model, data.x, batch_size)
    return (logits.argmax(1) == data.y).float().mean().item()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    was_training = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    model.train(was_training)
    return out


def shift_augment(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by a random integer offset in [-max_shift, max_shift], edges replicated."""
    n, _, h, w = x.shape
    pad = F.pad(x, (max_shift,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :]
    batch = torch.arange(n)[:, None, None, None]
    chan = torch.arange(x.shape[1])[None, :, None, None]
    return pad[batch, chan, rows, cols]


def fingerprint(student: nn.Module, teacher: nn.Module | None, loss: DistillLoss, data: ArrayData,
                config: TrainConfig) -> str:
    """What a checkpoint must match to be resumed: architecture, loss, data and settings."""
    settings = {k: v for k, v in asdict(config).items() if k not in ("resume", "progress", "checkpoint")}
    parts = {
        "student": getattr(student, "edgekd_arch", type(student).__name__),
        "student_shapes": [list(p.shape) for p in student.parameters()],
        "teacher": type(teacher).__name__ if teacher is not None else None,
        "loss": [type(loss).__name__, loss.config()],
        "data": [len(data), list(data.input_shape), float(data.x[:64].double().sum())],
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fit(student: nn.Module, train: ArrayData, val: ArrayData | None, loss: DistillLoss,
        teacher: nn.Module | None = None, config: TrainConfig = TrainConfig(), desc: str = "train") -> TrainResult:
    """Train ``student`` with ``loss`` (against a frozen ``teacher`` when the loss needs one)."""
    if loss.needs_teacher and teacher is None:
        raise EdgeKDError(f"loss {type(loss).__name__} needs a teacher")
    if teacher is not None:
        teacher.eval().requires_grad_(False)
    torch.manual_seed(config.seed)
    params = list(student.parameters()) + list(loss.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.epochs * steps_per_epoch,
                                                    pct_start=0.15)
    ckpt_path = Path(config.checkpoint) if config.checkpoint else None
    key = fingerprint(student, teacher, loss, train, config)
    history: list[dict] = []
    start = 0
    if config.resume:
        if ckpt_path is None or not ckpt_path.exists():
            raise CheckpointError(f"resume requested but there is no checkpoint at {ckpt_path}")
        blob = load_checkpoint(ckpt_path, key)
        student.load_state_dict(blob["model"])
        loss.load_state_dict(blob["loss"])
        optimizer.load_state_dict(blob["optimizer"])
        scheduler.load_state_dict(blob["scheduler"])
        history, start = blob["history"], int(blob["epoch"])
        log.info("resumed %s from epoch %d of %d", desc, start, config.epochs)

    steps_total = config.epochs * steps_per_epoch
    bar = tqdm(total=steps_total, initial=start * steps_per_epoch, desc=desc, disable=not config.progress,
               mininterval=1.0, dynamic_ncols=True)
    for epoch in range(start, config.epochs):
        terms = _train_epoch(student, teacher, loss, train, optimizer, scheduler, config, epoch, bar, desc)
        record = {"epoch": epoch + 1, **terms}
        if val is not None:
            record["val_accuracy"] = evaluate(student, val)
        history.append(record)
        bar.set_postfix({"epoch": epoch + 1, **{k: f"{v:.3f}" for k, v in record.items() if k != "epoch"}})
        if ckpt_path is not None:
            state = {"model": student.state_dict(), "loss": loss.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
            save_checkpoint(ckpt_path, fingerprint=key, epoch=epoch + 1, state=state, history=history)
    bar.close()
    student.eval()
    return TrainResult(student, history, start)


def _train_epoch(student, teacher, loss, train, optimizer, scheduler, config, epoch, bar, desc) -> dict:
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    order = torch.randperm(len(train), generator=generator)
    student.train()
    loss.train()
    sums: dict[str, float] = {}
    steps = 0
    s_layers = [s for s, _ in loss.feature_pairs]
    t_layers = [t for _, t in loss.feature_pairs]
    for step, i in enumerate(range(0, len(train), config.batch_size)):
        index = order[i : i + config.batch_size]
        x, y = train.x[index], train.y[index]
        if config.augment:
            x = shift_augment(x, config.shift, generator)
        teacher_out = None
        if loss.needs_teacher:
            with torch.no_grad(), capture_features(teacher, t_layers) as t_feats:
                teacher_out = ModelOutput(teacher(x), dict(t_feats))
        with capture_features(student, s_layers) as s_feats:
            student_out = ModelOutput(student(x), s_feats)
            terms = loss(student_out, teacher_out, (x, y))
        total = sum(terms.values())
        if not torch.isfinite(total):
            raise EdgeKDError(f"{desc}: loss diverged (non-finite {total.item()}) at epoch {epoch + 1}, "
                              f"step {step + 1}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        scheduler.step()
        steps += 1
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + value.item()
        bar.update(1)
    return {k: v / max(steps, 1) for k, v in sums.items()}
