"""Speed gate: an int8 artifact ships only if it is faster than its own fp32 build, measured here."""

from __future__ import annotations

import numpy as np

from edgekd.backends.base import Artifact, get_backend
from edgekd.validate.latency import time_calls

def fp32_variant(artifact: Artifact) -> Artifact | None:
    """The fp32 model the backend wrote beside the int8 one, as an artifact of the same folder."""
    if "fp32" not in artifact.files or artifact.precision == "fp32":
        return None
    fp32 = Artifact.read(artifact.folder / artifact.files["fp32"])
    fp32.precision = "fp32"
    return fp32


def measure_pair(int8: Artifact, fp32: Artifact, batch: int, threads: int, runs: int = 100, rounds: int = 3) -> dict:
    """p50 latency of both, interleaved in ``rounds`` so machine noise hits both alike."""
    x = np.random.default_rng(0).standard_normal((batch, *int8.input_shape)).astype(np.float32)
    runners = {"int8": get_backend(int8.backend).load(int8, threads),
               "fp32": get_backend(fp32.backend).load(fp32, threads)}
    p50 = {k: [] for k in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            p50[name].append(time_calls(runner, x, warmup=10, runs=runs)["p50"])
    return {k: float(np.median(v)) for k, v in p50.items()}


def speed_gate(artifact: Artifact, target) -> tuple[Artifact, dict]:
    """Ship the faster of int8 and fp32 on this machine; the record says which and why."""
    fp32 = fp32_variant(artifact)
    if fp32 is None:
        return artifact, {"applied": False, "reason": "no fp32 build beside the artifact"}
    ms = measure_pair(artifact, fp32, target.latency.batch, target.latency.threads)
    record = {"applied": True, "batch": target.latency.batch, "threads": target.latency.threads,
              "p50_ms": ms, "int8_speedup": ms["fp32"] / ms["int8"]}
    if ms["int8"] < ms["fp32"]:
        record["shipped"], record["reason"] = "int8", f"int8 is {ms['fp32'] / ms['int8']:.2f}x faster than fp32"
        artifact.details["speed_gate"] = record
        artifact.save()
        return artifact, record
    record["shipped"] = "fp32"
    record["reason"] = (f"int8 ({ms['int8']:.3f} ms) is not faster than fp32 ({ms['fp32']:.3f} ms) here; "
                        "shipping fp32")
    fp32.details = {**artifact.details, "speed_gate": record, "int8_model": artifact.files["model"]}
    fp32.files = {**artifact.files, "model": artifact.files["fp32"]}
    fp32.save()
    return fp32, record
