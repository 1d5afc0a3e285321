"""The score registry and the context every score of one search shares (imported by each score module)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from edgekd.registry import Registry

ScoreFn = Callable[["ScoreContext", nn.Module], float]
SCORES: Registry[ScoreFn] = Registry("score")


@dataclass
class ScoreContext:
    """What every score of one search shares.

    Attributes:
        x, y: the labelled batch (64–128 samples are typical).
        teacher: the trained teacher; DisWOT re-initializes a copy of it unless
            ``teacher_init == "trained"``.
        teacher_init: ``"gaussian"`` (the paper: teacher at initialization) or ``"trained"``.
        seed: seeds the teacher's re-initialization.
        semantic_mode: how DisWOT's M_s compares the classifier gradients: ``"class"`` (K×K class
            relations, comparable across student widths: the default, so one search ranks every
            candidate on one scale), ``"channel"`` (the paper's C×C form; equal widths only) or
            ``"auto"`` (channel when the widths match, else class).
        cache: per-search memo (the teacher's matrices live here).
    """

    x: torch.Tensor
    y: torch.Tensor
    teacher: nn.Module | None = None
    teacher_init: str = "gaussian"
    seed: int = 0
    semantic_mode: str = "class"
    cache: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


def register_score(name: str):
    """Register ``fn(ctx, student) -> float`` under ``name`` (higher = better)."""
    return SCORES.register(name)


def list_scores() -> list[str]:
    return SCORES.names()


def get_score(name: str) -> ScoreFn:
    return SCORES.get(name)
