"""Constraints of a search: predicted latency on the target, FLOPs, parameters.

Latency comes from the target's latency model (``edgekd.hw.latency_model(target)``) when that
module exists and predicts milliseconds (a fitted profile, not the FLOPs proxy); otherwise it is
measured: the candidate is exported to ONNX (fp32) and timed in ONNX
Runtime at batch 1 with the target's thread count. The measured fallback is a proxy for the int8
artifact's latency (quantizing every candidate would cost a calibration each) and it is noisy
near the budget, so a search that uses it is deterministic only up to that noise.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from torch import nn

from edgekd.capability import capability
from edgekd.hw.model import latency_model
from edgekd.onnx_export import export_onnx
from edgekd.ort_session import ort_session
from edgekd.search.scores.cost import count_flops, count_params
from edgekd.validate.latency import time_calls

log = logging.getLogger(__name__)


def arch_key(arch: dict) -> str:
    return json.dumps(arch, sort_keys=True, default=list)


def measure_onnx_ms(model: nn.Module, input_shape, threads: int = 1, runs: int = 50,
                    budget_ms: float | None = None) -> float:
    """p50 milliseconds of one batch-1 fp32 ONNX Runtime call of ``model``.

    With ``budget_ms``, a candidate whose first few calls take over twice the budget is settled by
    those calls alone: big candidates would otherwise dominate the cost of a search.
    """
    with tempfile.TemporaryDirectory(prefix="edgekd-search-") as tmp:
        path = export_onnx(model, tuple(input_shape), Path(tmp) / "candidate.onnx")
        session = ort_session(path, threads)
    name = session.get_inputs()[0].name
    x = np.zeros((1, *input_shape), dtype=np.float32)
    call = lambda v: session.run(None, {name: v})  # noqa: E731
    quick = time_calls(call, x, warmup=2, runs=5)["p50"]
    if budget_ms is not None and quick > 2 * budget_ms:
        return quick
    return time_calls(call, x, warmup=5, runs=runs)["p50"]


class LatencyPredictor:
    """Milliseconds per batch-1 call of a candidate on ``target``, cached per architecture.

    Attributes:
        kind: ``"measured-onnxruntime-fp32"`` for the fallback, else the latency model's ``kind``.
    """

    def __init__(self, target, input_shape, runs: int = 50, budget_ms: float | None = None):
        self.target = target
        self.input_shape = tuple(input_shape)
        self.threads = target.latency.threads if target is not None else 1
        self.runs = runs
        self.budget_ms = budget_ms
        self.model = _hw_model(target, self.input_shape)
        self.timed_here = self.model is None and _device_is_here(target)
        if self.model is not None:
            self.kind = getattr(self.model, "kind", "model")
        elif self.timed_here:
            self.kind = "measured-onnxruntime-fp32"
        else:
            # never time another device's candidates on this CPU: x86 milliseconds are not its latency
            self.kind = "none"
            warnings.warn(f"{target.name}: no latency model for its device, so its latency budget cannot be "
                          "checked during search; only FLOPs and parameter limits apply", stacklevel=2)
        self._cache: dict[str, float | None] = {}

    def __call__(self, arch: dict, build: Callable[[], nn.Module]) -> float | None:
        key = arch_key(arch)
        if key not in self._cache:
            if not self.timed_here and self.model is None:
                self._cache[key] = None
            elif self.model is not None:
                self._cache[key] = float(self.model.predict_ms(arch, self.input_shape))
            else:
                self._cache[key] = measure_onnx_ms(build(), self.input_shape, self.threads, self.runs,
                                                   self.budget_ms)
        return self._cache[key]


def _device_is_here(target) -> bool:
    """Whether this machine is the target's device, so timing a candidate here is its latency."""
    if target is None:
        return True
    return capability(target).latency_here


def _hw_model(target, input_shape):
    """The target's latency model from ``edgekd.hw`` (rescaled to this CPU at ``input_shape`` where it was
    fitted on another), or None when it has no usable one."""
    if target is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its "falling back to FLOPs" warning: we measure instead
            model = latency_model(target, input_shape=input_shape)
    except Exception as exc:  # noqa: BLE001 - a target without a fitted model falls back to measuring
        log.info("no latency model for %s (%s); measuring candidates in ONNX Runtime", target.name, exc)
        return None
    if getattr(model, "kind", None) == "flops":  # MMACs, not milliseconds: useless against a ms budget
        log.info("%s has only a FLOPs latency proxy; measuring candidates in ONNX Runtime", target.name)
        return None
    return model


@dataclass(frozen=True)
class Limits:
    """Upper bounds a candidate must meet; None means unconstrained."""

    budget_ms: float | None = None
    max_flops: int | None = None
    max_params: int | None = None
    min_flops: int | None = None


def check(arch: dict, model: nn.Module, limits: Limits, latency: LatencyPredictor | None, input_shape) -> dict:
    """Costs of a candidate and the reason it is rejected (None when accepted); cheap checks first."""
    costs = {"flops": count_flops(model, input_shape), "params": count_params(model), "latency_ms": None}
    reason = None
    if limits.max_flops is not None and costs["flops"] > limits.max_flops:
        reason = f"flops {costs['flops']} > {limits.max_flops}"
    elif limits.min_flops is not None and costs["flops"] < limits.min_flops:
        reason = f"flops {costs['flops']} < {limits.min_flops}"
    elif limits.max_params is not None and costs["params"] > limits.max_params:
        reason = f"params {costs['params']} > {limits.max_params}"
    elif latency is not None:
        costs["latency_ms"] = latency(arch, lambda: model)
        if limits.budget_ms is not None and costs["latency_ms"] is not None and costs["latency_ms"] > limits.budget_ms:
            reason = f"latency {costs['latency_ms']:.3f} ms > {limits.budget_ms} ms"
    return {**costs, "rejected": reason}
