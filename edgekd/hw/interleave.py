"""Interleaved timing of several models: A B C A B C ..., so that machine drift hits every model alike.

Timing models one after another (A A A B B B) lets a neighbour's burst of load land on one model
only; interleaving in rounds spreads it over all of them, and the spread of each model's round
medians is its repeatability, the noise floor a latency model cannot beat.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from edgekd.errors import ConfigError
from edgekd.hw.environment import cpu_model
from edgekd.hw.profiler import ProfileResult, load_runner, runtime_of, trimmed_median

REPEATABLE = 0.05  # a network whose round medians spread more than this is too noisy to score a model on


def time_interleaved(fns: dict[str, Callable[[], object]], *, rounds: int = 5, runs: int = 20, warmup: int = 5,
                     trim: float = 0.1, min_block_ms: float = 0.0, shuffle_seed: int | None = None
                     ) -> dict[str, ProfileResult]:
    """Time each callable in ``rounds`` interleaved rounds of ``runs`` calls (A B C A B C ...).

    Returns one :class:`ProfileResult` per name; its ``spread`` is (max - min) / median of that
    model's round medians (its repeatability) and ``stable`` says whether it is within 5 %. With
    three models or more, ``spread_net_of_drift`` is that spread once each round is divided by the
    machine's factor in that round (the median over models of round median / overall median): the
    model's own noise, with what the whole machine did left out.

    ``min_block_ms``: a model whose ``runs`` calls take less gets more calls per block (estimated from
    its warmup), so that a fast model's round median is not a handful of microsecond readings.
    ``shuffle_seed``: the order of the models is reshuffled every round (seeded), so that drift within
    a round does not always land on the same models.
    """
    if rounds < 2 or runs < 1:
        raise ConfigError("time_interleaved: rounds must be >= 2 and runs >= 1")
    if not fns:
        raise ConfigError("time_interleaved: no models to time")
    started = time.perf_counter()
    block_runs = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        for _ in range(warmup):
            fn()
        per_call_ms = max((time.perf_counter() - t0) * 1000.0 / max(warmup, 1), 1e-6)
        block_runs[name] = max(runs, int(np.ceil(min_block_ms / per_call_ms))) if min_block_ms and warmup else runs
    times: dict[str, list[np.ndarray]] = {name: [] for name in fns}
    order, rng = list(fns), np.random.default_rng(shuffle_seed)
    for _ in range(rounds):
        if shuffle_seed is not None:
            order = [order[i] for i in rng.permutation(len(order))]
        for name in order:  # one block of runs per model per round
            fn, block = fns[name], np.empty(block_runs[name])
            for i in range(len(block)):
                t0 = time.perf_counter()
                fn()
                block[i] = (time.perf_counter() - t0) * 1000.0
            times[name].append(block)
    seconds = time.perf_counter() - started
    results = {name: _result(blocks, trim, seconds) for name, blocks in times.items()}
    if len(results) >= 3:
        for name, factor_free in _net_of_drift(results).items():
            results[name].spread_net_of_drift = factor_free
    return results


def machine_factors(results: dict[str, ProfileResult]) -> np.ndarray:
    """Per round, how much slower the whole machine ran than over all rounds (median over models)."""
    ratios = np.array([np.asarray(r.rounds) / np.median(r.rounds) for r in results.values()])
    return np.median(ratios, axis=0)


def _net_of_drift(results: dict[str, ProfileResult]) -> dict[str, float]:
    factors = machine_factors(results)
    out = {}
    for name, r in results.items():
        corrected = np.asarray(r.rounds) / factors
        out[name] = float((corrected.max() - corrected.min()) / np.median(corrected))
    return out


def _result(blocks: list[np.ndarray], trim: float, seconds: float) -> ProfileResult:
    medians = np.array([trimmed_median(b, trim) for b in blocks])
    every = np.concatenate(blocks)
    q1, q3 = np.percentile(every, [25, 75])
    spread = float((medians.max() - medians.min()) / np.median(medians))
    return ProfileResult(median_ms=trimmed_median(every, trim), p90_ms=float(np.percentile(every, 90)),
                         p10_ms=float(np.percentile(every, 10)), spread=spread,
                         iqr_rel=float((q3 - q1) / np.median(every)), runs=len(every),
                         rounds=[round(float(m), 6) for m in medians], stable=spread <= REPEATABLE, seconds=seconds)


@contextlib.contextmanager
def pinned_cpu(cpu: int | None) -> Iterator[int | None]:
    """Run the block on one CPU where the OS allows it (Linux); elsewhere, or with None, unpinned.

    Every thread of the process is pinned, not only the caller: OpenVINO runs a 1-thread model on a
    worker thread created when the model was loaded, and with only the caller pinned its timings came
    out 5-20 % slower than with the whole process on that CPU (which inflated a profile fit).
    """
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        yield None
        return
    before = os.sched_getaffinity(0)
    if cpu not in before:
        raise ConfigError(f"cpu {cpu} is not available to this process (allowed: {sorted(before)})")
    _set_affinity({cpu})
    try:
        yield cpu
    finally:
        _set_affinity(before)


def _set_affinity(cpus: set[int]) -> None:
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    for tid in threads:
        try:
            os.sched_setaffinity(tid, cpus)
        except OSError:  # a thread that ended meanwhile
            pass


def profile_many(models: dict[str, tuple[Path, tuple]], *, runtime: str | None = None, threads: int = 1,
                 rounds: int = 5, runs: int = 20, warmup: int = 5, cpu: int | None = None,
                 seed: int = 0, min_block_ms: float = 0.0, shuffle: bool = False) -> dict[str, ProfileResult]:
    """Time compiled models interleaved in their runtime, batch 1.

    Args:
        models: ``{name: (model file, (C, H, W))}``; all run in one runtime (default: from the suffix).
        cpu: pin the process to this CPU while timing (Linux only; recorded in ``env``).
        min_block_ms, shuffle: see :func:`time_interleaved` (``shuffle`` reshuffles with ``seed``).
    """
    inputs, fns = {}, {}
    for name, (path, shape) in models.items():
        run = load_runner(Path(path), runtime_of(Path(path), runtime), threads)
        inputs[name] = np.random.default_rng(seed).standard_normal((1, *shape)).astype(np.float32)
        fns[name] = (lambda r, x: (lambda: r(x)))(run, inputs[name])
    with pinned_cpu(cpu) as pinned:
        results = time_interleaved(fns, rounds=rounds, runs=runs, warmup=warmup, min_block_ms=min_block_ms,
                                   shuffle_seed=seed if shuffle else None)
    for name, result in results.items():
        path, shape = models[name]
        result.env = {"cpu": cpu_model(), "pinned_cpu": pinned, "threads": threads, "batch": 1,
                      "runtime": runtime_of(Path(path), runtime), "input_shape": list(shape),
                      "model": Path(path).name, "interleaved_with": len(models) - 1, "rounds": rounds}
    return results
