"""Running a slow (emulated) runtime over the validation set: a tqdm bar and an estimated time."""

from __future__ import annotations

import logging
import time

import numpy as np
from tqdm.auto import tqdm

log = logging.getLogger(__name__)


def run_with_progress(runner, x: np.ndarray, progress: bool, label: str, chunk: int = 8) -> np.ndarray:
    """``runner(x)`` in chunks of ``chunk`` samples; after the first chunk, logs the estimated total time."""
    if not progress or len(x) <= chunk:
        return runner(x)

    outs, started = [], time.perf_counter()
    with tqdm(total=len(x), desc=label, unit="img", leave=False) as bar:
        for i in range(0, len(x), chunk):
            outs.append(np.asarray(runner(x[i : i + chunk])))
            bar.update(len(outs[-1]))
            if i == 0:
                per = (time.perf_counter() - started) / len(outs[-1])
                log.info("%s: %.2f s per sample, about %.0f s for %d samples", label, per, per * len(x), len(x))
    return np.concatenate(outs)
