"""The search stage of ``edgekd build``: cheap, and safe for the build's accuracy gate.

The build searches ``resnet-compact`` (no narrower than the default student, at most two blocks a
stage) under the target's latency budget and at most twice the default student's multiply-
accumulates: every candidate has at least the default student's capacity, which passes the
x86 gate, and the distillation that follows costs at most about twice the default's time.
Population 6 and 12 iterations (18 proposals) keep the search well under a minute.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch import nn

from edgekd.capability import capability
from edgekd.errors import ConfigError
from edgekd.models import DEFAULT_STUDENT, create_student
from edgekd.schema.student import set_card
from edgekd.search.api import search
from edgekd.search.scores import DEFAULT_SCORE
from edgekd.search.scores.cost import count_flops
from edgekd.search.verify import verify_finalists

log = logging.getLogger(__name__)

BUILD_SEARCH = {"space": "resnet-compact", "score": DEFAULT_SCORE, "population": 6, "iterations": 12, "threads": 1,
                "flops_factor": 2.0}


DEFAULT_FAMILY_SCALES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)  # the default student's widths × these


def default_family() -> list[dict]:
    """The default student and its width-scaled siblings, smallest first: always in the search's population."""
    base = {k: v for k, v in DEFAULT_STUDENT.items()}
    return [{**base, "widths": tuple(max(4, int(round(w * f))) for w in base["widths"])}
            for f in DEFAULT_FAMILY_SCALES]


def teacher_constraints(teacher: nn.Module, target, teacher_latency: dict | None) -> dict:
    """What every searched student must beat: fewer parameters than the teacher, and a latency below the
    teacher compiled for this target (its measured p50 here, else its predicted one, else none and why)."""
    budget = target.latency.budget_ms
    params = sum(p.numel() for p in teacher.parameters())
    rec = teacher_latency or {}
    t_ms = rec.get("latency_p50_ms") if rec.get("latency_kind") in ("measured", "predicted") else None
    limit = min(x for x in (budget, t_ms) if x is not None) if (budget, t_ms) != (None, None) else None
    return {"max_params": params - 1, "teacher_params": params, "target_budget_ms": budget,
            "teacher_latency_ms": t_ms, "teacher_latency_kind": rec.get("latency_kind") if t_ms is not None else None,
            "teacher_latency_why_none": None if t_ms is not None else
            (rec.get("latency_how") or rec.get("reason") or "the teacher was not compiled"),
            "latency_limit_ms": limit}


def search_student(teacher: nn.Module, train, target, seed: int = 0, out_dir: str | Path | None = None,
                   progress: bool = False, teacher_latency: dict | None = None,
                   num_classes: int | None = None) -> nn.Module:
    """A fresh student of the architecture the build's search chose; its summary is ``card_of(model).search``.

    The student must have fewer parameters than the teacher and a predicted latency below the compiled
    teacher's (``teacher_latency``: the report's ``teacher_artifact`` record) and the target's budget. The
    default family is always proposed. Where the compiled teacher was measured here (this machine is the
    device), the finalists are compiled and timed too, and the best-scoring one measured faster than the
    teacher wins (``edgekd.search.verify``). Where nothing fits, the default student is distilled and
    the summary says so (``outcome``: ``"none-fits"``, ``why``, ``fallback``). ``num_classes``: the
    build's class count (default: the labels'), which a training split may not use in full.
    """
    classes = num_classes or train.num_classes
    settings = dict(BUILD_SEARCH)
    factor = settings.pop("flops_factor")
    kwargs = {k: v for k, v in DEFAULT_STUDENT.items() if k != "name"}
    default = create_student(DEFAULT_STUDENT["name"], train.input_shape, classes, **kwargs)
    max_flops = int(factor * count_flops(default, train.input_shape))
    limits = teacher_constraints(teacher, target, teacher_latency)
    try:
        result = search(teacher, train, target, max_flops=max_flops, max_params=limits["max_params"],
                        budget_ms=limits["latency_limit_ms"], seed=seed, out_dir=out_dir, progress=progress,
                        include=default_family(), **settings)
    except ConfigError as exc:  # nothing beats the teacher here: say so, distill the default, let ship decide
        log.warning("%s: no student fits (%s); distilling the default student", target.name, exc)
        return set_card(default, search={"outcome": "none-fits", "why": str(exc), "fallback": "default-student",
                                         "arch": dict(DEFAULT_STUDENT), "space": settings["space"],
                                         "score_name": settings["score"], "constraints": limits, "finalists": []})
    summary = {**result.summary(), "outcome": "found", "why": None, "fallback": None, "constraints": limits,
               "chosen_by": "highest score among the candidates meeting every constraint"}
    if _measurable_here(target, limits):
        summary = _verified(summary, result, target, train, limits, out_dir, seed, classes)
        if summary["outcome"] == "none-fits":
            log.warning("%s: %s; distilling the default student", target.name, summary["why"])
            set_card(default, search={**summary, "arch": dict(DEFAULT_STUDENT)})
            return default
    kwargs = {k: v for k, v in summary["arch"].items() if k != "name"}
    torch.manual_seed(seed)
    model = create_student(summary["arch"]["name"], train.input_shape, classes, **kwargs)
    set_card(model, search=summary)
    return model


def _measurable_here(target, limits: dict) -> bool:
    return limits.get("teacher_latency_kind") == "measured" and capability(target).latency_here


def _verified(summary: dict, result, target, train, limits: dict, out_dir, seed: int, classes: int) -> dict:
    """The summary after timing the finalists' artifacts here against the compiled teacher."""
    started = time.perf_counter()

    def build(arch):
        return create_student(arch["name"], train.input_shape, classes,
                              **{k: v for k, v in arch.items() if k != "name"})

    winner, checked = verify_finalists(summary["finalists"], build, target, train, limits["teacher_latency_ms"],
                                       Path(out_dir) if out_dir is not None else None, seed)
    out = {**summary, "finalists": checked, "verify_seconds": time.perf_counter() - started}
    if winner is None:
        measured = ", ".join(f"{f['measured_artifact_ms']:.3g}" for f in checked if f["measured_artifact_ms"])
        return {**out, "outcome": "none-fits", "fallback": "default-student",
                "why": f"no finalist's artifact is faster than the compiled teacher when measured here "
                       f"(teacher {limits['teacher_latency_ms']:.3g} ms; finalists {measured or 'none'} ms)"}
    return {**out, "arch": winner["arch"], "score": winner["score"],
            "predicted_latency_ms": winner["predicted_latency_ms"], "params": winner["params"],
            "flops": winner["flops"],
            "chosen_by": "highest score among the finalists whose artifact was measured faster than the "
                         "compiled teacher here"}
