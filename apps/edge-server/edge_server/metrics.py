"""Request counters and latency percentiles over a bounded window (memory stays flat)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np

WINDOW = 10_000  # latencies kept for the percentiles: the most recent requests only


class Metrics:
    """Counts every request by route and status; keeps the last ``window`` predict latencies."""

    def __init__(self, window: int = WINDOW):
        self._lock = threading.Lock()
        self._started = time.time()
        self._requests: Counter = Counter()
        self._latency_ms: deque = deque(maxlen=window)
        self._inference_ms: deque = deque(maxlen=window)
        self._batch_sizes: Counter = Counter()
        self.predictions = 0

    def record_request(self, route: str, status: int, latency_ms: float, predict: bool) -> None:
        with self._lock:
            self._requests[(route, status)] += 1
            if predict and status < 400:
                self._latency_ms.append(latency_ms)

    def record_batch(self, size: int, inference_ms: float) -> None:
        with self._lock:
            self._batch_sizes[size] += 1
            self._inference_ms.append(inference_ms)
            self.predictions += size

    def snapshot(self) -> dict:
        """Counts by route and status class, and p50/p90/p99 of predict latency (ms)."""
        with self._lock:
            requests = dict(self._requests)
            latency = np.asarray(self._latency_ms, dtype=np.float64)
            inference = np.asarray(self._inference_ms, dtype=np.float64)
            batches = dict(self._batch_sizes)
            predictions = self.predictions
        by_route: dict[str, dict[str, int]] = {}
        for (route, status), n in sorted(requests.items()):
            by_route.setdefault(route, {})[str(status)] = n
        total = sum(requests.values())
        errors_4xx = sum(n for (_, s), n in requests.items() if 400 <= s < 500)
        errors_5xx = sum(n for (_, s), n in requests.items() if s >= 500)
        return {
            "uptime_s": round(time.time() - self._started, 3),
            "requests_total": total,
            "responses_4xx": errors_4xx,
            "responses_5xx": errors_5xx,
            "requests_by_route": by_route,
            "predictions": predictions,
            "latency_ms": _percentiles(latency),
            "inference_ms_per_batch": _percentiles(inference),
            "batch_sizes": {str(k): v for k, v in sorted(batches.items())},
        }


def _percentiles(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"count": int(values.size), "p50": round(float(p50), 3), "p90": round(float(p90), 3),
            "p99": round(float(p99), 3), "max": round(float(values.max()), 3)}
