"""The search stage of ``edgekd build``: cheap, and safe for the build's accuracy gate.

The build searches ``resnet-compact`` (no narrower than the default student, at most two blocks a
stage) under the target's latency budget and at most twice the default student's multiply-
accumulates: every candidate has at least the default student's capacity, which passes the
x86 gate, and the distillation that follows costs at most about twice the default's time.
Population 6 and 12 iterations (18 proposals) keep the search well under a minute.
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from edgekd.models import DEFAULT_STUDENT, create_student
from edgekd.search.api import search
from edgekd.search.scores import get_score
from edgekd.search.scores.cost import count_flops
from edgekd.search.spaces import make_space

log = logging.getLogger(__name__)

BUILD_SEARCH = {"space": "resnet-compact", "score": "diswot", "population": 6, "iterations": 12, "threads": 1,
                "flops_factor": 2.0}


def search_student(teacher: nn.Module, train, target, seed: int = 0, out_dir: str | Path | None = None,
                   progress: bool = False) -> nn.Module:
    """A fresh student of the architecture the build's search chose; its summary is ``model.edgekd_search``."""
    settings = dict(BUILD_SEARCH)
    factor = settings.pop("flops_factor")
    kwargs = {k: v for k, v in DEFAULT_STUDENT.items() if k != "name"}
    default = create_student(DEFAULT_STUDENT["name"], train.input_shape, train.num_classes, **kwargs)
    max_flops = int(factor * count_flops(default, train.input_shape))
    result = search(teacher, train, target, max_flops=max_flops, seed=seed, out_dir=out_dir, progress=progress,
                    **settings)
    model = result.build()
    model.edgekd_search = result.summary()
    return model


def search_builtin(dataset: str | None, target, seed: int = 0, progress: bool = True, **kwargs):
    """``edgekd search``: the default (cached) teacher of a built-in dataset, then ``search``."""
    from edgekd.pipeline import _prepare_data, _prepare_teacher
    from edgekd.targets import load_target

    target = load_target(target)
    make_space(kwargs.get("space", "resnet"), target.ops)  # a bad space fails before the teacher trains
    get_score(kwargs.get("score", "diswot"))
    data = _prepare_data(None, None, dataset, None, 0.2, seed)
    teacher, _ = _prepare_teacher(None, data, seed, progress)
    return search(teacher, data.train, target, seed=seed, progress=progress, **kwargs)
