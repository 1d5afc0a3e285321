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
from edgekd.distill import ddp
from edgekd.distill.cache import TeacherCache, maybe_cache
from edgekd.distill.checkpoint import load_checkpoint, save_checkpoint
from edgekd.distill.device import model_device, on_device, output_to, resolve_device
from edgekd.distill.hooks import capture_features
from edgekd.distill.losses.base import DistillLoss, ModelOutput
from edgekd.errors import CheckpointError, EdgeKDError
from edgekd.schema.student import arch_of

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
    cache_teacher_mb: float = 1024.0  # cache teacher outputs up to this size when valid; 0: never
    device: str = "cpu"  # where the steps run (edgekd.distill.device); the returned model is back on its own


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
    device = model_device(model)
    out = torch.cat([model(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
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


AUGMENT_DROP_WARN = 0.05  # top-1 the teacher may lose on augmented images before we warn


def teacher_under_augment(teacher: nn.Module, data: ArrayData, config: TrainConfig, size: int = 512) -> dict | None:
    """Teacher top-1 on labelled training images, clean and augmented as the student will see them.

    A teacher trained without augmentation can be far worse on shifted images (89 % → 65 % at
    ±2 px on 14 px Fashion-MNIST), and KD then teaches its mistakes; logged as a warning.
    """
    labelled = (data.y >= 0).nonzero().flatten()[:size]
    if len(labelled) == 0:
        return None
    x, y = data.x[labelled], data.y[labelled]
    shifted = shift_augment(x, config.shift, torch.Generator().manual_seed(config.seed))
    clean = (predict(teacher, x).argmax(1) == y).float().mean().item()
    augmented = (predict(teacher, shifted).argmax(1) == y).float().mean().item()
    if clean - augmented > AUGMENT_DROP_WARN:
        log.warning("the teacher's top-1 drops from %.1f%% to %.1f%% on augmented training images (shifts of up "
                    "to %d px): distilling with augmentation teaches its mistakes; train the teacher with "
                    "augmentation or distill without", 100 * clean, 100 * augmented, config.shift)
    return {"clean": clean, "augmented": augmented}


_NOT_FINGERPRINTED = ("resume", "progress", "checkpoint", "cache_teacher_mb", "device")  # may resume elsewhere


def fingerprint(student: nn.Module, teacher: nn.Module | None, loss: DistillLoss, data: ArrayData,
                config: TrainConfig) -> str:
    """What a checkpoint must match to be resumed: architecture, loss, data and settings."""
    settings = {k: v for k, v in asdict(config).items() if k not in _NOT_FINGERPRINTED}
    parts = {
        "student": arch_of(student, type(student).__name__),
        "student_shapes": [list(p.shape) for p in student.parameters()],
        "teacher": type(teacher).__name__ if teacher is not None else None,
        "loss": [type(loss).__name__, loss.config()],
        "data": [len(data), list(data.input_shape), float(data.x[:64].double().sum())],
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fit(student: nn.Module, train: ArrayData, val: ArrayData | None, loss: DistillLoss,
        teacher: nn.Module | None = None, config: TrainConfig = TrainConfig(), desc: str = "train",
        teacher_cache: TeacherCache | None = None) -> TrainResult:
    """Train ``student`` with ``loss`` (against a frozen ``teacher`` when the loss needs one).

    Under ``torchrun`` (an initialized process group) the student and the loss's adapters are
    wrapped in DistributedDataParallel and each global batch is split across ranks; only rank 0
    writes checkpoints. ``teacher_cache`` reuses teacher outputs computed earlier on ``train``.
    """
    if loss.needs_teacher and teacher is None:
        raise EdgeKDError(f"loss {type(loss).__name__} needs a teacher")
    device = resolve_device(config.device)
    with on_device(device, student, teacher if loss.needs_teacher else None, loss):
        return _fit(student, train, val, loss, teacher, config, desc, teacher_cache, device)


def _fit(student, train, val, loss, teacher, config, desc, teacher_cache, device) -> TrainResult:
    """:func:`fit`'s epoch loop, with the student, teacher and loss already on ``device``."""
    if teacher is not None:
        teacher.eval().requires_grad_(False)
        if config.augment and loss.needs_teacher:
            teacher_under_augment(teacher, train, config)
    ctx = ddp.current()
    torch.manual_seed(config.seed)
    loss.bind(student, teacher if loss.needs_teacher else None, train.x[:2].to(device))
    loss.to(device)  # adapters built by bind
    params = list(student.parameters()) + list(loss.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, config.lr, total_steps=config.epochs * steps_per_epoch,
                                                    pct_start=0.15)
    ckpt_path = Path(config.checkpoint) if config.checkpoint else None
    key = fingerprint(student, teacher, loss, train, config)
    history, start = _maybe_resume(config, ckpt_path, key, student, loss, optimizer, scheduler, desc)
    run = _Run(ddp.current(), _teacher_source(teacher, loss, train, config, teacher_cache, device),
               ctx.wrap(_Step(student, loss), device), device)
    bar = tqdm(total=config.epochs * steps_per_epoch, initial=start * steps_per_epoch, desc=desc,
               disable=not (config.progress and ctx.is_main), mininterval=1.0, dynamic_ncols=True)
    for epoch in range(start, config.epochs):
        terms = ctx.all_mean(_train_epoch(run, loss, train, optimizer, scheduler, config, epoch, bar, desc))
        record = {"epoch": epoch + 1, **terms}
        if val is not None:
            record["val_accuracy"] = evaluate(student, val)
        history.append(record)
        bar.set_postfix({"epoch": epoch + 1, **{k: f"{v:.3f}" for k, v in record.items() if k != "epoch"}})
        if ckpt_path is not None and ctx.is_main:
            state = {"model": student.state_dict(), "loss": loss.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
            save_checkpoint(ckpt_path, fingerprint=key, epoch=epoch + 1, state=state, history=history)
    bar.close()
    student.eval()
    return TrainResult(student, history, start)


def _maybe_resume(config, ckpt_path, key, student, loss, optimizer, scheduler, desc) -> tuple[list[dict], int]:
    if not config.resume:
        return [], 0
    if ckpt_path is None or not ckpt_path.exists():
        raise CheckpointError(f"resume requested but there is no checkpoint at {ckpt_path}")
    blob = load_checkpoint(ckpt_path, key)
    student.load_state_dict(blob["model"])
    loss.load_state_dict(blob["loss"])
    optimizer.load_state_dict(blob["optimizer"])
    scheduler.load_state_dict(blob["scheduler"])
    log.info("resumed %s from epoch %d of %d", desc, int(blob["epoch"]), config.epochs)
    return blob["history"], int(blob["epoch"])


class _Step(nn.Module):
    """Student forward + loss as one module, so DDP syncs the student and the loss's adapters."""

    def __init__(self, student: nn.Module, loss: DistillLoss):
        super().__init__()
        self.student, self.loss = student, loss

    def forward(self, x, y, teacher_out):
        with capture_features(self.student, [s for s, _ in self.loss.feature_pairs]) as feats:
            out = ModelOutput(self.student(x), feats)
            return self.loss(out, teacher_out, (x, y))


@dataclass
class _Run:
    ctx: ddp.DistContext
    teacher: object  # callable (index, x) -> ModelOutput | None
    step: nn.Module
    device: torch.device


def _teacher_source(teacher, loss, train, config, cache, device):
    """How a step gets teacher outputs: from a cache when valid, else a live no-grad forward."""
    if not loss.needs_teacher:
        return lambda index, x: None
    layers = [t for _, t in loss.feature_pairs]
    if cache is None or not cache.matches(teacher, train, layers) or config.augment:
        cache = maybe_cache(teacher, train, layers, config.augment, config.cache_teacher_mb)
    if cache is not None:
        return lambda index, x: output_to(cache.lookup(index), device)

    def live(index, x):
        with torch.no_grad(), capture_features(teacher, layers) as feats:
            return ModelOutput(teacher(x), dict(feats))

    return live


def _train_epoch(run: _Run, loss, train, optimizer, scheduler, config, epoch, bar, desc) -> dict:
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    order = torch.randperm(len(train), generator=generator)
    run.step.train()
    sums: dict[str, float] = {}
    steps = 0
    for step, i in enumerate(range(0, len(train), config.batch_size)):
        index = order[i : i + config.batch_size]
        x = train.x[index]
        if config.augment:  # drawn for the whole global batch, so every rank keeps the same generator
            x = shift_augment(x, config.shift, generator)
        if len(index) < run.ctx.world:
            continue  # a tail batch too small to give every rank a sample; all ranks skip it alike
        local = run.ctx.shard(torch.arange(len(index)))
        index, x = index[local], x[local].to(run.device, non_blocking=True)
        terms = run.step(x, train.y[index].to(run.device), run.teacher(index, x))
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
