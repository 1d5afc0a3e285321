"""Ethos-U latency model: Arm's Vela compiler's performance estimate of each candidate.

There is no board to profile, so the model is the compiler itself: the candidate is built with
seeded weights, written as int8 TFLite (placeholder activation ranges: cycles depend on shapes
and weights, not on ranges) and compiled by Vela for the target's accelerator, whose estimated
inference time is the prediction. About a second per new architecture, cached per architecture.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import onnx
import torch

from edgekd.backends.ethosu import run_vela
from edgekd.backends.tflite_int8 import onnx_to_int8_tflite
from edgekd.calibrate.collect import float_tensors
from edgekd.hw.base import LatencyModel
from edgekd.models import create_student
from edgekd.onnx_export import export_onnx

# Placeholder activation range (about ±4 is where normalised activations live); Vela's cycle
# estimate does not read ranges beyond the rescale it emits, which costs the same for any scale.
_PLACEHOLDER_RANGE = (-4.0, 4.0)


class VelaLatencyModel(LatencyModel):
    kind = "vela"

    def __init__(self, target):
        options = target.backend_options
        self.accelerator = str(options.get("accelerator_config", "ethos-u55-128"))
        self.system_config, self.memory_mode = options.get("system_config"), options.get("memory_mode")
        self.source = {"target": target.name, "estimator": "Arm Vela performance estimate",
                       "accelerator": self.accelerator, "system_config": self.system_config or "vela default",
                       "memory_mode": self.memory_mode or "vela default"}
        self._cache: dict[str, float] = {}

    def predict_ms(self, arch: dict, input_shape, num_classes: int = 10) -> float:
        key = json.dumps([arch, list(input_shape), num_classes], sort_keys=True, default=list)
        if key not in self._cache:
            self._cache[key] = self._estimate(arch, tuple(input_shape), num_classes)
        return self._cache[key]

    def _estimate(self, arch: dict, input_shape, num_classes: int) -> float:
        kwargs = dict(arch)
        name = kwargs.pop("name")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = create_student(name, input_shape, num_classes, **kwargs).eval()
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            fp32 = export_onnx(model, input_shape, tmp / "candidate.onnx", static_batch=1)
            ranges = {t: _PLACEHOLDER_RANGE for t in float_tensors(onnx.load(str(fp32)))}
            tflite = onnx_to_int8_tflite(fp32, ranges, tmp / "candidate.tflite")
            vela = run_vela(tflite, tmp, self.accelerator, self.system_config, self.memory_mode)
        return float(vela["summary"]["inference_time"]) * 1000.0
