"""Latency of one call at a fixed batch and thread count: warm-up, then timed runs."""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def torch_threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_calls(fn, x, warmup: int = 20, runs: int = 200) -> dict:
    """Milliseconds per call of ``fn(x)``: p50, p90, mean and the number of timed runs."""
    for _ in range(warmup):
        fn(x)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn(x)
        times[i] = time.perf_counter() - start
    times *= 1000.0
    return {"p50": float(np.percentile(times, 50)), "p90": float(np.percentile(times, 90)),
            "mean": float(times.mean()), "runs": runs}


def torch_latency(model: torch.nn.Module, x: np.ndarray, threads: int, runs: int = 200) -> dict:
    """Eager PyTorch latency under ``torch.inference_mode`` with ``threads`` intra-op threads."""
    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    model = model.eval()
    with torch_threads(threads), torch.inference_mode():
        stats = time_calls(model, tensor, runs=runs)
    return {**stats, "runtime": f"torch {torch.__version__} eager", "threads": threads, "batch": len(x)}


def runner_latency(runner, x: np.ndarray, threads: int, runs: int = 200) -> dict:
    stats = time_calls(runner, np.ascontiguousarray(x, dtype=np.float32), runs=runs)
    return {**stats, "runtime": runner.backend, "threads": threads, "batch": len(x)}
