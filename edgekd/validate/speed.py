"""Speed gate: an int8 artifact ships unless its own fp32 build is clearly faster on this CPU.

``speed_gate = true`` times both here. ``"profile"`` asks this CPU's own latency profile
(``targets/profiles/<target>@<cpu>.json``) instead, so that a rebuild makes the same choice; it
times them like ``true`` where this CPU has no profile of its own, and keeps int8 for a model
that is not a registry architecture, which no profile predicts and whose timing could flip a near
tie between rebuilds. The compiled teacher (the row to beat) is not gated this way: its folder keeps
int8 and :func:`faster_precision` times both for the row. On x86 CPUs without VNNI, ONNX Runtime's
int8 kernels are slower than its fp32 ones for nearly every small network (README, "int8 on x86 without VNNI").
"""

from __future__ import annotations

import logging

import numpy as np

from edgekd.backends.base import Artifact, get_backend
from edgekd.hw.base import FP32_MARGIN, fp32_is_faster
from edgekd.validate.latency import time_calls

log = logging.getLogger(__name__)
NOT_REGISTRY = "not a registry architecture"


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


def predicted_pair(target, arch, input_shape, num_classes: int = 10) -> tuple[dict | None, str]:
    """int8 and fp32 milliseconds of ``arch`` from this CPU's own profile of ``target``; None and why not."""
    from edgekd.hw.model import (  # on first use: it loads the backends
        ProfileLatencyModel,
        cpu_model,
        profile_path,
        read_profile,
    )
    from edgekd.models import list_students

    if not isinstance(arch, dict) or arch.get("name") not in list_students():
        return None, NOT_REGISTRY
    arch = {k: v for k, v in arch.items() if not k.startswith("qat")}  # a QAT student: the same network
    path = profile_path(target.name)
    if not path.exists():
        return None, f"no latency profile of {target.name}"
    data = read_profile(path)
    if (data["provenance"].get("machine") or {}).get("cpu") != cpu_model():
        return None, f"{path.name} was fitted on another CPU"
    if not {"int8", "fp32"} <= set(data["precisions"]):
        return None, f"{path.name} lacks an int8 or fp32 model"
    shape = tuple(int(d) for d in input_shape)
    return {p: ProfileLatencyModel.load(path, p).predict_ms(arch, shape, num_classes) for p in ("int8", "fp32")}, \
        f"predicted by {path.name}"


def speed_gate(artifact: Artifact, target, arch=None, num_classes: int = 10) -> tuple[Artifact, dict]:
    """Ship int8, or fp32 where it is clearly faster on this machine (:func:`edgekd.hw.base.fp32_is_faster`).

    ``arch``: the registry architecture of the model, which a ``"profile"`` gate predicts instead of timing.
    Returns the shipped artifact and the gate's record (milliseconds, which was shipped, why, how it was
    decided). ``artifact.json`` keeps the record without measured milliseconds, which differ run to run,
    so that a rebuild that makes the same choice writes the same file.
    """
    fp32 = fp32_variant(artifact)
    if fp32 is None:
        return artifact, {"applied": False, "reason": "no fp32 build beside the artifact"}
    ms, how = None, "measured here, interleaved"
    if target.gate.speed_gate == "profile":
        ms, why = predicted_pair(target, arch, artifact.input_shape, num_classes)
        if ms is None and why == NOT_REGISTRY:  # a teacher: timing could flip a near tie between rebuilds
            record = {"applied": False, "shipped": "int8", "reason": f"{why}: the target's int8 is kept, untimed"}
            artifact.details["speed_gate"] = record
            artifact.save()
            return artifact, record
        how = why if ms is not None else f"measured here, interleaved ({why})"
    measured = ms is None
    if measured:
        ms = measure_pair(artifact, fp32, target.latency.batch, target.latency.threads)
    record = _decision(ms, target, how, measured)
    shipped = record["shipped"]
    log.info("%s speed gate: %s", target.name, record["reason"])
    kept = {k: v for k, v in record.items() if not (measured and k in ("p50_ms", "int8_speedup", "reason"))}
    if shipped == "int8":
        artifact.details["speed_gate"] = kept
        artifact.save()
        return artifact, record
    fp32.details = {**artifact.details, "speed_gate": kept, "int8_model": artifact.files["model"]}
    fp32.files = {**artifact.files, "model": artifact.files["fp32"], "int8": artifact.files["model"]}  # kept, hashed
    fp32.save()
    return fp32, record


def faster_precision(artifact: Artifact, target) -> tuple[Artifact, dict]:
    """The faster of ``artifact`` (int8) and the fp32 build beside it, both timed here, interleaved, under
    the speed gate's rule; nothing is written (the compiled teacher's folder keeps int8, so a rebuild
    writes the same files whichever wins a near tie). Returns the faster and the decision's record."""
    fp32 = fp32_variant(artifact)
    if fp32 is None:
        return artifact, {"applied": False, "reason": "no fp32 build beside the artifact"}
    ms = measure_pair(artifact, fp32, target.latency.batch, target.latency.threads)
    record = _decision(ms, target, "measured here, interleaved", True)
    record["reason"] = record["reason"].replace(" ships:", " is the faster:", 1)
    log.info("%s compiled teacher: %s", target.name, record["reason"])
    return (fp32 if record["shipped"] == "fp32" else artifact), record


def _decision(ms: dict, target, how: str, measured: bool) -> dict:
    shipped = "fp32" if fp32_is_faster(ms["int8"], ms["fp32"]) else "int8"
    return {"applied": True, "batch": target.latency.batch, "threads": target.latency.threads,
            "shipped": shipped, "decided_by": how, "rule": f"fp32 when at least {FP32_MARGIN:.0%} faster than int8",
            "p50_ms": ms, "int8_speedup": ms["fp32"] / ms["int8"],
            "reason": f"{shipped} ships: int8 {ms['int8']:.3f} ms, fp32 {ms['fp32']:.3f} ms "
                      f"({'measured here' if measured else 'predicted'})"}
