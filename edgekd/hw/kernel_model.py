"""A latency model over runtime kernels: one predictor per kernel type, summed, plus a per-network overhead.

The kernels come from :func:`edgekd.hw.kernels.runtime_kernels`, i.e. what the runtime runs after its
own fusions on this CPU and precision. Each kernel type with enough samples gets its own boosted
trees over :data:`~edgekd.hw.kernels.KERNEL_FEATURES` (log time); rarer types share one model that
also sees the type's mean time. The network is ``scale · Σ kernels + base + per_kernel · n``.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgekd.errors import ConfigError
from edgekd.hw import trees
from edgekd.hw.features import arch_key
from edgekd.hw.fit import compile_onnx
from edgekd.hw.kernels import KERNEL_FEATURES, NO_COMPUTE, Kernel, runtime_kernels

SCHEMA = "edgekd.kernel-latency/1"
MIN_SAMPLES = 12  # a kernel type needs this many timed instances for trees of its own


def fit_kernel_model(networks: list[tuple[list[Kernel], float]], *, min_samples: int = MIN_SAMPLES,
                     seed: int = 0) -> dict:
    """Fit per-type predictors from ``(kernels with measured ms, whole-network ms)`` pairs; JSON-ready."""
    if len(networks) < 3:
        raise ConfigError(f"kernel latency fit: {len(networks)} networks measured; at least 3 are needed")
    by_type: dict[str, list[Kernel]] = defaultdict(list)
    for kernels, _ in networks:
        for k in kernels:
            if k.op not in NO_COMPUTE and k.ms is not None:
                by_type[k.op].append(k)
    type_ms = {op: float(np.median([k.ms for k in ks])) for op, ks in by_type.items()}
    per_type = {}
    for op, ks in by_type.items():
        if len(ks) >= min_samples:
            x = np.array([k.features() for k in ks])
            per_type[op] = trees.to_json(trees.fit_gbrt(x, np.log([max(k.ms, 1e-5) for k in ks]), seed=seed),
                                         KERNEL_FEATURES)
    every = [k for ks in by_type.values() for k in ks]
    x_all = np.array([k.features() + [np.log(type_ms[k.op])] for k in every])
    shared = trees.to_json(trees.fit_gbrt(x_all, np.log([max(k.ms, 1e-5) for k in every]), seed=seed),
                           (*KERNEL_FEATURES, "log_type_median_ms"))
    model = {"schema": SCHEMA, "per_type": per_type, "shared": shared, "type_median_ms": type_ms,
             "overhead": {"scale": 1.0, "base_ms": 0.0, "per_kernel_ms": 0.0}}
    sums = [KernelLatencyModel(model).kernel_sum_ms(ks) for ks, _ in networks]
    model["overhead"] = _fit_overhead(sums, [_count(ks) for ks, _ in networks], [t for _, t in networks])
    return model


def _count(kernels: list[Kernel]) -> int:
    return sum(k.op not in NO_COMPUTE for k in kernels)


def _fit_overhead(sums: list[float], counts: list[int], totals: list[float]) -> dict:
    """total = scale · Σ + base + per_kernel · n, by relative non-negative least squares."""
    # heavy optional package: imported on first use
    from scipy.optimize import nnls

    a = np.array([[s, 1.0, n] for s, n in zip(sums, counts)])
    y = np.asarray(totals, dtype=np.float64)
    w = 1.0 / y
    coef, _ = nnls(a * w[:, None], y * w)
    return {"scale": float(coef[0]), "base_ms": float(coef[1]), "per_kernel_ms": float(coef[2])}


class KernelLatencyModel:
    """Predicts a network's batch-1 latency from the kernels its runtime runs."""

    kind = "kernels"

    def __init__(self, model: dict, source: dict | None = None):
        if model.get("schema") != SCHEMA:
            raise ConfigError(f"kernel latency model: schema {model.get('schema')!r}, expected {SCHEMA!r}")
        self.model, self.source = model, source or {}
        self._cache: dict = {}

    def kernel_ms(self, kernel: Kernel) -> tuple[float, str]:
        """One kernel's predicted time and which predictor gave it (its type's trees or the shared ones)."""
        blob = self.model["per_type"].get(kernel.op)
        if blob is not None:
            return float(np.exp(trees.predict(blob, np.array([kernel.features()]))[0])), kernel.op
        typical = self.model["type_median_ms"].get(kernel.op, float(np.median(list(
            self.model["type_median_ms"].values()))))
        x = np.array([kernel.features() + [np.log(typical)]])
        return float(np.exp(trees.predict(self.model["shared"], x)[0])), "shared"

    def kernel_sum_ms(self, kernels: list[Kernel]) -> float:
        return float(sum(self.kernel_ms(k)[0] for k in kernels if k.op not in NO_COMPUTE))

    def predict_kernels_ms(self, kernels: list[Kernel]) -> float:
        oh = self.model["overhead"]
        return float(oh["scale"] * self.kernel_sum_ms(kernels) + oh["base_ms"] + oh["per_kernel_ms"] * _count(kernels))

    def predict_file_ms(self, path: Path, input_shape, runtime: str = "onnxruntime", threads: int = 1) -> float:
        """Read the kernels the runtime makes of a model file (one profiled run) and predict its latency."""
        return self.predict_kernels_ms(runtime_kernels(path, input_shape, runtime=runtime, threads=threads))

    def predict_ms(self, arch: dict, input_shape, num_classes: int = 10, *, precision: str = "fp32",
                   runtime: str = "onnxruntime", threads: int = 1) -> float:
        """Predicted latency of a registry architecture: compiled as the target does, kernels read, summed."""
        key = (arch_key(arch), tuple(input_shape), precision, runtime)
        if key not in self._cache:
            with tempfile.TemporaryDirectory() as tmp:
                _, path = compile_onnx(arch, tuple(input_shape), precision, Path(tmp))
                self._cache[key] = self.predict_file_ms(path, input_shape, runtime, threads)
        return self._cache[key]
