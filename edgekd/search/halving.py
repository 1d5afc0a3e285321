"""Second search stage: successive halving over the screening's finalists with short distillations.

A training-free score only screens; what decides is how well a candidate distills. Each rung
distills every surviving finalist for that rung's epochs more, continuing from where the previous
rung left it, on a fixed subset (KD from the teacher's cached logits: one teacher forward for the
whole stage), scores it on held-out data and keeps the better ``keep`` share, e.g. 8 → 4 → 2 → 1
over rungs of 1, 1 and 2 epochs. Ties keep the candidate screened higher, so the result is a pure
function of the inputs and the seed.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from edgekd.data.sources import ArrayData
from edgekd.distill.cache import TeacherCache
from edgekd.distill.losses import KD
from edgekd.distill.trainer import TrainConfig, evaluate, fit
from edgekd.errors import ConfigError
from edgekd.models import create_student


@dataclass(frozen=True)
class HalvingConfig:
    """Rung epochs, the share kept per rung, and the data each short distillation sees."""

    rung_epochs: tuple[int, ...] = (1, 1, 2)
    keep: float = 0.5
    train_size: int = 2000
    val_size: int = 1000
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0

    def __post_init__(self):
        if not self.rung_epochs or any(e < 1 for e in self.rung_epochs):
            raise ConfigError(f"halving rung_epochs must be positive epochs, got {self.rung_epochs}")
        if not 0 < self.keep < 1:
            raise ConfigError(f"halving keep must lie in (0, 1), got {self.keep}")
        if self.train_size < 1 or self.val_size < 1:
            raise ConfigError("halving train_size and val_size must be >= 1")


@dataclass
class Finalist:
    """One candidate of the second stage: what screening said, and the accuracy after each rung it ran."""

    arch: dict
    screening_score: float | None = None
    predicted_ms: float | None = None
    accuracies: list[float] = field(default_factory=list)
    eliminated_after_rung: int | None = None  # None: survived every rung


@dataclass
class HalvingResult:
    winner: dict
    finalists: list[Finalist]
    rung_epochs: tuple[int, ...]
    student_epochs: float  # short-distillation cost, in epochs over the full training set
    seconds: float

    def why(self) -> dict:
        """The typed explanation a report shows: winner's accuracies and the runner-up's at the last rung."""
        last = max(len(f.accuracies) for f in self.finalists)
        ranked = sorted((f for f in self.finalists if len(f.accuracies) == last), key=lambda f: -f.accuracies[-1])
        best = next(f for f in self.finalists if f.arch == self.winner)
        runner_up = next((f for f in ranked if f.arch != self.winner), None)
        return {"winner_accuracy": best.accuracies[-1], "rungs": last,
                "runner_up": runner_up.arch if runner_up else None,
                "margin": best.accuracies[-1] - runner_up.accuracies[-1] if runner_up else None}

    def to_json(self) -> dict:
        return {"winner": self.winner, "rung_epochs": list(self.rung_epochs), "student_epochs": self.student_epochs,
                "seconds": self.seconds, "why": self.why(), "finalists": [asdict(f) for f in self.finalists]}


def successive_halving(finalists: list[Finalist], teacher: nn.Module, train: ArrayData, val: ArrayData,
                       config: HalvingConfig = HalvingConfig(), *, progress: bool = False) -> HalvingResult:
    """Distill the finalists briefly, rung by rung, keeping the best ``keep`` share each time.

    Args:
        finalists: screened candidates, best-screened first (the tie-break order).
        teacher: the frozen teacher; its logits on the subset are computed once.
        train, val: the build's data; the first ``config.train_size`` / ``val_size`` samples of a
            seeded permutation are used.
    """
    if not finalists:
        raise ConfigError("successive halving needs at least one finalist")
    started = time.perf_counter()
    sub_train, sub_val = _subset(train, config.train_size, config.seed), _subset(val, config.val_size, config.seed + 1)
    cache = TeacherCache(teacher, sub_train)
    alive = list(range(len(finalists)))
    students = {i: _student(f.arch, sub_train, int(cache.logits.shape[1]), config.seed) for i, f in enumerate(finalists)}
    spent = 0.0
    for rung, epochs in enumerate(config.rung_epochs):
        for i in alive:
            finalists[i].accuracies.append(_distill_more(students[i], teacher, sub_train, sub_val, cache, epochs,
                                                         config, rung, progress))
        spent += epochs * len(alive) * len(sub_train) / max(len(train), 1)
        if len(alive) == 1 or rung == len(config.rung_epochs) - 1:
            break
        keep = max(1, math.ceil(len(alive) * config.keep))
        ranked = sorted(alive, key=lambda i: (-finalists[i].accuracies[-1], i))
        for i in ranked[keep:]:
            finalists[i].eliminated_after_rung = rung
        alive = sorted(ranked[:keep])
    winner = min(alive, key=lambda i: (-finalists[i].accuracies[-1], i))
    return HalvingResult(copy.deepcopy(finalists[winner].arch), finalists, tuple(config.rung_epochs), spent,
                         time.perf_counter() - started)


def _subset(data: ArrayData, size: int, seed: int) -> ArrayData:
    if size >= len(data):
        return data
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:size]
    return data.subset(index)


def _student(arch: dict, train: ArrayData, classes: int, seed: int) -> nn.Module:
    kwargs = dict(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_student(kwargs.pop("name"), tuple(train.x.shape[1:]), classes, **kwargs)


def _distill_more(student: nn.Module, teacher, train: ArrayData, val: ArrayData, cache: TeacherCache, epochs: int,
                  config: HalvingConfig, rung: int, progress: bool) -> float:
    """``epochs`` more of KD (a new data order per rung), then the held-out accuracy."""
    train_config = TrainConfig(epochs=epochs, batch_size=config.batch_size, lr=config.lr,
                               seed=config.seed * 1000 + rung, augment=False, progress=progress)
    fit(student, train, None, KD(), teacher, train_config, desc="halving", teacher_cache=cache)
    return evaluate(student, val)
