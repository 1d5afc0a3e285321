"""Black-box conformance: an artifact, run in its own runtime, must agree with the torch model.

Thresholds (top-1 agreement with the torch fp32 reference on real data): ≥ 0.99 for fp32
artifacts, ≥ 0.97 for int8. A backend whose runtime or device is absent yields "not run here"
with the reason, never "passed".
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.backends.base import Artifact, get_backend
from edgekd.compiler import compile_artifact
from edgekd.errors import NotRunHere
from edgekd.ort_session import ort_session
from edgekd.targets import Target, load_target
from edgekd.validate.metrics import agreement, mean_cosine

log = logging.getLogger(__name__)
MIN_AGREEMENT = {"fp32": 0.99, "fp16": 0.99, "int8": 0.97, "int8w": 0.97}


@dataclass
class ConformanceResult:
    target: str
    backend: str
    precision: str
    status: str  # "passed", "failed", "not run here"
    agreement: float | None = None
    cosine: float | None = None
    max_abs_diff: float | None = None
    threshold: float | None = None
    samples: int = 0
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_json(self) -> dict:
        return asdict(self)


def reference_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()


def judge(artifact: Artifact, logits: np.ndarray, reference: np.ndarray, runtime_note: str = "") -> ConformanceResult:
    """Compare an artifact's logits with the torch reference against the precision's threshold."""
    threshold = MIN_AGREEMENT.get(artifact.precision, MIN_AGREEMENT["int8"])
    agree = agreement(logits, reference)
    status = "passed" if agree >= threshold else "failed"
    reason = "" if status == "passed" else f"top-1 agreement {agree:.4f} < {threshold:.2f} ({artifact.precision})"
    return ConformanceResult(artifact.target, artifact.backend, artifact.precision, status, agree,
                             mean_cosine(logits, reference), float(np.abs(logits - reference).max()), threshold,
                             len(reference), "; ".join(x for x in (reason, runtime_note) if x))


def check_artifact(artifact: Artifact | str | Path, reference: np.ndarray, x: np.ndarray) -> ConformanceResult:
    """Run ``artifact`` in its runtime on ``x`` and judge it against the reference logits."""
    if not isinstance(artifact, Artifact):
        artifact = Artifact.read(artifact)
    try:
        runner = get_backend(artifact.backend).load(artifact)
    except NotRunHere as exc:
        return ConformanceResult(artifact.target, artifact.backend, artifact.precision, "not run here",
                                 samples=len(x), reason=str(exc))
    return judge(artifact, np.asarray(runner(x), np.float32), reference)


def check_onnx_in_onnxruntime(artifact: Artifact, reference: np.ndarray, x: np.ndarray) -> ConformanceResult:
    """Judge an artifact's QDQ ONNX in ONNX Runtime (TensorRT's numeric check where no engine is built).

    Unfused: the QDQ graph's exact rounding and clipping, which the device follows, not this CPU's int8
    kernels (without VNNI their int16 sums saturate; :mod:`edgekd.quant.cpu`).
    """
    path = artifact.folder / artifact.files.get("qdq_onnx", artifact.files["fp32"])
    sess = ort_session(path, optimize=False)
    logits = sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(x, np.float32)})[0]
    return judge(artifact, logits, reference, f"checked in onnxruntime CPU, QDQ unfused ({path.name}); "
                                             f"{artifact.details.get('engine', '')}".rstrip("; "))


def with_precision(target: str | Target, precision: str) -> Target:
    """The same target in fp32 (or its own int8 format): for fp32 conformance of every backend."""
    target = load_target(target)
    if precision == "fp32":
        fmt = target.format.model_copy(update={"weights": "fp32", "activations": "fp32"})
        return target.model_copy(update={"format": fmt, "name": f"{target.name}-fp32"})
    return target


def run_conformance(model: nn.Module, target: str | Target, calib, x: np.ndarray, out_dir: str | Path,
                    precision: str = "int8") -> ConformanceResult:
    """Compile ``model`` for ``target`` at ``precision``, run it in its runtime, judge it vs torch."""
    tgt = with_precision(target, precision)
    artifact = compile_artifact(model, tgt, calib, out_dir)
    reference = reference_logits(model, x)
    result = check_artifact(artifact, reference, x)
    if result.status == "not run here" and "qdq_onnx" in artifact.files:
        onnx_check = check_onnx_in_onnxruntime(artifact, reference, x)
        onnx_check.reason = f"{result.reason}; {onnx_check.reason}"
        return onnx_check
    return result


class AddConcatNet(nn.Module):
    """A small conv net whose blocks add a skip and concatenate two branches (the third conformance model)."""

    def __init__(self, in_ch: int = 1, classes: int = 10, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_ch, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.a = nn.Sequential(nn.Conv2d(width, width // 2, 3, padding=1), nn.BatchNorm2d(width // 2), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(width, width // 2, 1), nn.BatchNorm2d(width // 2), nn.ReLU())
        self.mix = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width))
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.stem(x)
        y = torch.cat([self.a(x), self.b(x)], dim=1)
        x = torch.relu(self.mix(y) + x)
        return self.head(x.mean(dim=(2, 3)))
