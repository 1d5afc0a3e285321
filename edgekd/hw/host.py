"""Which CPU a latency profile describes, and bringing a profile from another CPU to this one.

Profiles are per machine. ``targets/profiles/<target>@<cpu>.json`` was fitted on that CPU
(``edgekd profile --fit`` writes one for the CPU it runs on) and is preferred wherever that CPU
runs the build; ``<target>.json`` is the shipped default. A default fitted on another CPU of the
same instruction set, used where the target's device is this machine, is rescaled by timing a
few anchor networks here (:func:`host_scaled`): one factor, the geometric mean of measured over
predicted. It corrects the overall speed, not kernels that are relatively slower here (int8 dense
convolutions lost 9-11x from a Xeon with VNNI to an AMD EPYC without, depthwise ones 4x), nor the
ranking: a fit here is far better (bench/latency_host.py). The report's latency source says which was used.
"""

from __future__ import annotations

import logging
import re
import tempfile
from pathlib import Path

import numpy as np

from edgekd.hw.base import LatencyModel

log = logging.getLogger(__name__)

# the default student and its halved / doubled widths, and two MobileNetV2 cells: the kinds of
# kernels a search prices (dense and depthwise convolutions, small and large)
ANCHORS = (
    {"name": "resnet", "depths": (1, 1, 1), "widths": (8, 16, 32)},
    {"name": "resnet", "depths": (1, 1, 1), "widths": (16, 32, 64)},
    {"name": "resnet", "depths": (2, 2, 2), "widths": (32, 64, 128)},
    {"name": "mobilenetv2", "widths": (16, 24, 32), "depths": (1, 2, 2), "expansions": (4, 4, 4),
     "kernels": (3, 3, 3)},
    {"name": "mobilenetv2", "widths": (24, 36, 48), "depths": (2, 3, 2), "expansions": (6, 6, 6),
     "kernels": (5, 5, 5)},
)
SCALE_STEP = 0.05  # the factor is rounded to 5 % steps in log space: timing noise rarely moves a rebuild's search
_cache: dict[tuple, dict] = {}


def cpu_slug(cpu: str) -> str:
    """A file-name form of a CPU model: ``Intel(R) Xeon(R) Processor`` → ``intel-xeon-processor``."""
    text = re.sub(r"\((r|tm)\)", " ", cpu.lower())
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "unknown-cpu"


def host_profile_name(target_name: str, cpu: str) -> str:
    return f"{target_name}@{cpu_slug(cpu)}.json"


class HostScaledLatencyModel(LatencyModel):
    """A profile fitted on another CPU, times the factor measured on this one; otherwise the same model."""

    kind = "profile"

    def __init__(self, base, host_scale: dict):
        self.base, self.host_scale = base, host_scale
        self.source = {**base.source, "host_scale": host_scale}

    def predict_ms(self, arch: dict, input_shape, num_classes: int = 10) -> float:
        return float(self.host_scale["factor"] * self.base.predict_ms(arch, input_shape, num_classes))

    def __getattr__(self, name):  # precision, table, covers, anchor_shape, block_ms ... of the base profile
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)


def measure_host_scale(base, runtime: str, input_shape, *, threads: int = 1, anchors=ANCHORS,
                       rounds: int = 5, runs: int = 20) -> dict:
    """Time ``anchors`` compiled at ``base.precision`` in ``runtime`` here, interleaved; the factor that
    maps ``base``'s predictions onto them, and each anchor's measured/predicted ratio."""
    from edgekd.hw.fit import compile_onnx
    from edgekd.hw.interleave import profile_many

    shape = tuple(int(d) for d in input_shape)
    with tempfile.TemporaryDirectory(prefix="edgekd-host-scale-") as tmp:
        files = {}
        for i, arch in enumerate(anchors):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            files[str(i)] = (compile_onnx(arch, shape, base.precision, folder)[1], shape)
        timed = profile_many(files, runtime=runtime, threads=threads, rounds=rounds, runs=runs)
    measured = np.array([timed[str(i)].median_ms for i in range(len(anchors))])
    predicted = np.array([base.predict_ms(a, shape) for a in anchors])
    ratios = measured / predicted
    raw = float(np.exp(np.mean(np.log(ratios))))
    factor = float(np.exp(SCALE_STEP * round(np.log(raw) / SCALE_STEP)))
    return {"factor": factor, "unrounded": raw, "input_shape": list(shape), "anchors": len(anchors),
            "ratio_range": [float(ratios.min()), float(ratios.max())], "runtime": runtime,
            "measured_ms": measured.round(5).tolist(), "predicted_ms": predicted.round(5).tolist()}


def host_scaled(base, target, input_shape) -> LatencyModel:
    """``base`` rescaled to this CPU at ``input_shape`` (measured once per process and shape)."""
    key = (base.source.get("file"), base.precision, tuple(int(d) for d in input_shape), target.latency.threads)
    if key not in _cache:
        _cache[key] = measure_host_scale(base, target.backend, input_shape, threads=target.latency.threads)
        scale = _cache[key]
        log.info("%s: latency profile from %r rescaled ×%.2f to this CPU by %d anchor networks at %s "
                 "(measured/predicted %.2f to %.2f)", target.name, (base.source.get("machine") or {}).get("cpu"),
                 scale["factor"], scale["anchors"], "×".join(map(str, scale["input_shape"])),
                 *scale["ratio_range"])
    return HostScaledLatencyModel(base, _cache[key])
