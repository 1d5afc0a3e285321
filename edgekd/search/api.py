"""``edgekd.search``: the best-scoring student of a space under a target's latency budget."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from edgekd.data.sources import as_array_data
from edgekd.errors import ConfigError
from edgekd.models import create_student
from edgekd.search.constraints import LatencyPredictor, Limits, arch_key, check
from edgekd.search.evolution import regularized_evolution
from edgekd.search.records import write_log, write_plot
from edgekd.search.scores import DEFAULT_SCORE, ScoreContext, get_score
from edgekd.search.spaces import make_space
from edgekd.targets import load_target
from edgekd.validate.latency import torch_threads

log = logging.getLogger(__name__)
ALL_OPS = ("conv", "depthwise_conv", "batchnorm", "relu", "relu6", "add", "global_avgpool", "linear")


@dataclass
class SearchResult:
    """The chosen student and the record of how it was found.

    Attributes:
        arch: ``{"name": family, **kwargs}``, what ``create_student`` takes.
        score: its score (higher is better). predicted_latency_ms: its latency on the target.
        rejected: proposals refused by a constraint. history: every proposal, in order.
    """

    arch: dict
    score: float
    predicted_latency_ms: float | None
    flops: int
    params: int
    input_shape: tuple
    num_classes: int
    score_name: str
    space: str
    latency_kind: str | None
    limits: Limits
    rejected: int
    history: list = field(repr=False, default_factory=list)
    seconds: float = 0.0
    log_path: str | None = None
    plot_path: str | None = None

    def build(self) -> nn.Module:
        """A fresh, untrained student of the chosen architecture."""
        kwargs = {k: v for k, v in self.arch.items() if k != "name"}
        return create_student(self.arch["name"], self.input_shape, self.num_classes, **kwargs)

    def summary(self) -> dict:
        """A JSON-ready record for reports (the build report's ``search`` section)."""
        scored = {arch_key(r["arch"]) for r in self.history if r["score"] is not None}
        return {"arch": self.arch, "score": self.score, "score_name": self.score_name, "space": self.space,
                "predicted_latency_ms": self.predicted_latency_ms, "latency_kind": self.latency_kind,
                "flops": self.flops, "params": self.params, "proposals": len(self.history),
                "scored": len(scored), "rejected": self.rejected,
                "limits": {k: v for k, v in vars(self.limits).items()}, "seconds": self.seconds,
                "log": self.log_path, "plot": self.plot_path, "finalists": self.finalists()}

    def finalists(self, k: int = 4) -> list[dict]:
        """The ``k`` best-scoring accepted candidates, best first: arch, score, latency, params, phase."""
        seen, out = set(), []
        for r in sorted((r for r in self.history if r["rejected"] is None), key=lambda r: -r["score"]):
            key = arch_key(r["arch"])
            if key not in seen:
                seen.add(key)
                out.append({"arch": r["arch"], "score": r["score"], "predicted_latency_ms": r["latency_ms"],
                            "params": r["params"], "flops": r["flops"], "phase": r["phase"]})
        return out[:k]


def search(teacher: nn.Module | None, train, target=None, *, space: str = "resnet", budget_ms: float | None = None,
           score: str = DEFAULT_SCORE, population: int = 16, iterations: int = 48, tournament: int = 4,
           seed: int = 0, batch_size: int = 64, teacher_init: str = "gaussian", max_flops: int | None = None,
           max_params: int | None = None, min_flops: int | None = None,
           latency: Callable[[dict], float] | None = None, out_dir: str | Path | None = None,
           threads: int | None = None, progress: bool = True, include: list[dict] | None = None) -> SearchResult:
    """Search ``space`` for the student that ``score`` ranks best under the target's constraints.

    Args:
        teacher: the trained teacher (DisWOT re-initializes a copy unless ``teacher_init="trained"``).
        train: ``(X, y)`` arrays, a Dataset or DataLoader; one seeded batch of ``batch_size`` is used.
        target: a target name, path or ``Target``; its ``ops`` filter the space, its latency budget
            and model constrain it. None: every operator, latency measured with one thread.
        budget_ms: latency budget; None takes the target's ``latency.budget_ms``.
        score: a name from ``edgekd.search.scores.list_scores()``.
        latency: replaces the latency model, ``fn(arch) -> ms`` (e.g. for a profiled device).
        out_dir: where ``search.jsonl`` and ``search.png`` are written; None writes nothing.
        threads: torch threads while scoring (None: unchanged); 1 is fastest on busy, shared CPUs.
        include: architectures always proposed first (e.g. the default student family); each one
            that meets the constraints is in the initial population, so the result scores at least
            as high as every accepted one.

    Returns:
        A ``SearchResult``: ``.arch``, ``.score``, ``.predicted_latency_ms``, ``.build()``.
    """
    started = time.perf_counter()
    target = load_target(target) if target is not None else None
    data = as_array_data(train, "train")
    gen = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(data), generator=gen)[:batch_size]
    x, y = data.x[index], data.y[index]
    shape, classes = tuple(data.input_shape), _classes(teacher, data)
    cand_space = make_space(space, target.ops if target is not None else ALL_OPS)
    budget = budget_ms if budget_ms is not None else (target.latency.budget_ms if target is not None else None)
    limits = Limits(budget, max_flops, max_params, min_flops)
    predictor = _latency(latency, target, shape, budget)
    ctx = ScoreContext(x, y, teacher, teacher_init, seed)
    evaluate = _evaluator(cand_space, get_score(score), ctx, limits, predictor, shape, classes, seed)
    with torch_threads(threads or torch.get_num_threads()):
        history = regularized_evolution(cand_space, evaluate, population, iterations, tournament, seed, progress,
                                        include=[_complete(a, cand_space) for a in include or ()])
    accepted = [r for r in history if r["rejected"] is None]
    if not accepted:
        raise ConfigError(f"search: no {space} candidate meets the constraints {limits}")
    best = max(accepted, key=lambda r: r["score"])  # max keeps the first of equal scores
    result = SearchResult(best["arch"], best["score"], best["latency_ms"], best["flops"], best["params"], shape,
                          classes, score, space, getattr(predictor, "kind", "user"), limits,
                          sum(r["rejected"] is not None for r in history), history)
    result.seconds = time.perf_counter() - started
    if out_dir is not None:

        result.log_path = str(write_log(history, Path(out_dir) / "search.jsonl"))
        result.plot_path = write_plot(result, Path(out_dir) / "search.png")
    predicted = "none" if result.predicted_latency_ms is None else f"{result.predicted_latency_ms:.3g}"
    log.info("search chose %s (score %.4g, predicted %s ms) after %d proposals, %d rejected", result.arch,
             result.score, predicted, len(history), result.rejected)
    return result


def _complete(arch: dict, space) -> dict:
    """An included architecture with every gene of ``space`` set (the activation defaults to its first choice)."""
    out = dict(arch)
    for gene, choices in space.genes:
        key = gene.partition(".")[0]
        out.setdefault(key, choices[0])
    return out


def _classes(teacher, data) -> int:
    if teacher is None:
        return data.num_classes
    with torch.no_grad():
        return int(teacher.eval()(data.x[:2]).shape[1])


def _latency(latency, target, shape, budget):
    if latency is None:
        return LatencyPredictor(target, shape, budget_ms=budget)
    wrapped = lambda arch, build: float(latency(arch))  # noqa: E731
    wrapped.kind = "user"
    return wrapped


def _evaluator(space, score_fn, ctx, limits, predictor, shape, classes, seed):
    cache: dict[str, dict] = {}

    def evaluate(arch: dict) -> dict:
        key = arch_key(arch)
        if key not in cache:
            started = time.perf_counter()
            torch.manual_seed(seed)  # the same arch gets the same initial weights, whatever came before
            model = space.build(arch, shape, classes)
            record = check(arch, model, limits, predictor, shape)
            record["score"] = None if record["rejected"] else float(score_fn(ctx, model))
            record["ops"] = sorted(space.ops(arch))
            record["seconds"] = time.perf_counter() - started
            cache[key] = record
        return dict(cache[key])

    return evaluate
