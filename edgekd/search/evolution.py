"""Regularized (aging) evolution, Real et al. 2019: tournament selection, one-gene mutation, and the
oldest member leaves the population each step. Deterministic for a seed given a deterministic
``evaluate``: every random choice comes from one ``random.Random(seed)``.
"""

from __future__ import annotations

import collections
import random
from typing import Callable

from tqdm.auto import tqdm

from edgekd.errors import ConfigError
from edgekd.search.spaces import Space

Evaluate = Callable[[dict], dict]  # arch -> {"score": float | None, "rejected": str | None, ...}


def regularized_evolution(space: Space, evaluate: Evaluate, population: int = 16, iterations: int = 48,
                          tournament: int = 4, seed: int = 0, progress: bool = False,
                          max_init_tries: int | None = None, include: list[dict] = ()) -> list[dict]:
    """Run the search; returns every proposal in order (``step``, ``phase``, ``arch`` + evaluate's keys).

    ``include``: architectures proposed first (phase ``include``); those accepted join the initial
    population, so the search ends with one at least as good (by score) as the best of them. The
    rest of the initial population is drawn at random until ``population`` candidates are accepted (or
    ``max_init_tries`` draws, default 20 × population, are spent). A rejected child costs its
    iteration and leaves the population as it was.

    Raises:
        ConfigError: when no sampled candidate meets the constraints.
    """
    if population < 2 or iterations < 0 or tournament < 1:
        raise ConfigError("population must be ≥ 2, iterations ≥ 0 and tournament ≥ 1")
    rng = random.Random(seed)
    log: list[dict] = []
    alive: collections.deque = collections.deque()
    bar = tqdm(total=population + iterations, desc="search", disable=not progress, mininterval=1.0)

    def propose(arch: dict, phase: str) -> dict:
        record = {"step": len(log), "phase": phase, "arch": arch, **evaluate(arch)}
        log.append(record)
        return record

    for arch in include:
        record = propose(dict(arch), "include")
        if record["rejected"] is None and len(alive) < population:
            alive.append(record)
            bar.update(1)
    tries = max_init_tries or 20 * population
    for _ in range(tries):
        if len(alive) == population:
            break
        record = propose(space.sample(rng), "init")
        if record["rejected"] is None:
            alive.append(record)
            bar.update(1)
    if not alive:
        bar.close()
        reasons = collections.Counter(r["rejected"].split(" ")[0] for r in log)
        raise ConfigError(f"search: none of {len(log)} sampled {space.name} candidates meets the constraints "
                          f"(rejected by {dict(reasons)}); raise the budget or choose another space")
    for _ in range(iterations):
        contenders = rng.sample(list(alive), min(tournament, len(alive)))
        parent = max(contenders, key=lambda r: r["score"])
        child = propose(space.mutate(parent["arch"], rng), "mutate")
        if child["rejected"] is None:
            alive.append(child)
            alive.popleft()  # aging: the oldest goes, whatever its score
        bar.update(1)
    bar.close()
    return log
