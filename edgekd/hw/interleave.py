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
                     trim: float = 0.1) -> dict[str, ProfileResult]:
    """Time each callable in ``rounds`` interleaved rounds of ``runs`` calls (A B C A B C ...).

    Returns one :class:`ProfileResult` per name; its ``spread`` is (max - min) / median of that
    model's round medians (its repeatability) and ``stable`` says whether it is within 5 %.
    """
    if rounds < 2 or runs < 1:
        raise ConfigError("time_interleaved: rounds must be >= 2 and runs >= 1")
    if not fns:
        raise ConfigError("time_interleaved: no models to time")
    started = time.perf_counter()
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[np.ndarray]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():  # one block of runs per model per round
            block = np.empty(runs)
            for i in range(runs):
                t0 = time.perf_counter()
                fn()
                block[i] = (time.perf_counter() - t0) * 1000.0
            times[name].append(block)
    seconds = time.perf_counter() - started
    return {name: _result(blocks, trim, seconds) for name, blocks in times.items()}


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
                 seed: int = 0) -> dict[str, ProfileResult]:
    """Time compiled models interleaved in their runtime, batch 1.

    Args:
        models: ``{name: (model file, (C, H, W))}``; all run in one runtime (default: from the suffix).
        cpu: pin the process to this CPU while timing (Linux only; recorded in ``env``).
    """
    inputs, fns = {}, {}
    for name, (path, shape) in models.items():
        run = load_runner(Path(path), runtime_of(Path(path), runtime), threads)
        inputs[name] = np.random.default_rng(seed).standard_normal((1, *shape)).astype(np.float32)
        fns[name] = (lambda r, x: (lambda: r(x)))(run, inputs[name])
    with pinned_cpu(cpu) as pinned:
        results = time_interleaved(fns, rounds=rounds, runs=runs, warmup=warmup)
    for name, result in results.items():
        path, shape = models[name]
        result.env = {"cpu": cpu_model(), "pinned_cpu": pinned, "threads": threads, "batch": 1,
                      "runtime": runtime_of(Path(path), runtime), "input_shape": list(shape),
                      "model": Path(path).name, "interleaved_with": len(models) - 1, "rounds": rounds}
    return results
