"""Per-layer sensitivity: which weighted layers hurt most when quantized, and keeping them in float.

For QDQ backends (ONNX Runtime, OpenVINO, TensorRT's ONNX): each weighted layer is quantized
alone (all others float) and its damage measured as mean KL of the logits against the fp32
model on held-out data; for ExecuTorch the same on the PT2E graph (:mod:`.sensitivity_pt2e`).
If an int8 artifact misses the target's gate, the most sensitive layers are kept in float (1, 2, 4, ... of them), the artifact is rebuilt and re-validated, until the gate
passes or half the layers are float; the report lists what was kept and why.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from edgekd.backends.base import Artifact
from edgekd.calibrate import Ranges, read_cache
from edgekd.compiler import compile_artifact
from edgekd.data.sources import as_array_data
from edgekd.errors import CompileError
from edgekd.ort_session import ort_session
from edgekd.quant.qdq import QDQConfig, qdq_summary, quantize_onnx
from edgekd.validate import evaluate_gate, validate
from edgekd.validate.metrics import agreement, mean_kl
from edgekd.validate.sensitivity_pt2e import pt2e_sensitivity

log = logging.getLogger(__name__)
QDQ_BACKENDS = ("onnxruntime", "openvino", "tensorrt")


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort_session(path, quiet=True)
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def layer_sensitivity(artifact: Artifact, calib: np.ndarray, x: np.ndarray, method: str = "minmax") -> list[dict]:
    """Each quantized layer of a QDQ artifact, quantized alone: KL and top-1 agreement vs fp32, worst first."""
    if artifact.backend not in QDQ_BACKENDS:
        raise CompileError(f"sensitivity analysis: backend {artifact.backend} has no QDQ ONNX to analyse "
                           f"(supported: {', '.join(QDQ_BACKENDS)})")
    folder = artifact.folder
    fp32 = folder / artifact.files.get("fp32_onnx", artifact.files["fp32"])
    layers = list(artifact.details.get("quantized_layers", []))
    symmetric = artifact.backend == "tensorrt" or _symmetric(folder / artifact.files.get("qdq_onnx",
                                                                                          artifact.files["model"]))
    config = QDQConfig(activations="int8" if symmetric else "uint8", activation_symmetric=symmetric, method=method,
                       percentile=99.99, weight_reduce_range=artifact.details.get("weight_bits") == 7)
    reference = _ort(fp32, x)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ranges = _artifact_ranges(artifact, symmetric)  # calibrated once, not once per layer
        for layer in layers:
            others = [name for name in layers if name != layer]
            q = quantize_onnx(fp32, Path(tmp) / "one.onnx", calib, config, static_batch=artifact.static_batch,
                              keep_float=others, ranges=ranges)
            out = _ort(q, x)
            rows.append({"layer": layer, "kl": mean_kl(reference, out), "agreement": agreement(out, reference)})
    return sorted(rows, key=lambda r: r["kl"], reverse=True)


def _artifact_ranges(artifact: Artifact, symmetric: bool) -> Ranges | None:
    """The artifact's own calibration cache, when it has one of the right kind (else calibrate per layer)."""
    name = artifact.files.get("calibration_cache")
    if not name or not (artifact.folder / name).exists():
        return None
    ranges = read_cache(artifact.folder / name)
    return ranges if ranges.symmetric == symmetric else None


def _symmetric(qdq_path: Path) -> bool:
    if qdq_path.suffix != ".onnx" or not qdq_path.exists():
        return False
    dtypes = {r["dtype"] for r in qdq_summary(qdq_path)["activation_ranges"].values()}
    return dtypes == {"int8"}


def can_recover(artifact: Artifact, target, validation: dict | None = None) -> bool:
    """Whether a missed gate can be retried with sensitive layers in float (int8 QDQ backends).

    Not when the fp32 student already misses the gate: quantization is then not the cause.
    """
    if validation and "student" in validation:
        drop = (validation["teacher"]["accuracy"] - validation["student"]["accuracy"]) * 100.0
        if drop > target.gate.max_accuracy_drop:
            return False
    if not (target.gate.keep_sensitive_float and artifact.precision == "int8"
            and bool(artifact.details.get("quantized_layers"))):
        return False
    if artifact.backend == "executorch":  # PT2E re-quantizes the float model: layers named by module
        return True
    return artifact.backend in QDQ_BACKENDS and "calibration_cache" in artifact.files  # PTQ only: a QAT
    # export keeps its learned scales


def recover_accuracy(model, target, calib, val, teacher, out_dir, artifact: Artifact, gate: dict, *, spec=None,
                     calib_size=None, max_fraction: float = 0.5) -> tuple[Artifact, dict, dict]:
    """Keep the most sensitive layers in float until the gate passes; returns (artifact, validation, record)."""
    data = as_array_data(val, "val")
    x = data.x.numpy()[:512]
    calib_x = as_array_data(calib, "calib").x.numpy()[:256]
    if artifact.backend == "executorch":
        ranking = pt2e_sensitivity(model, artifact, target, calib_x, x[:256])
    else:
        ranking = layer_sensitivity(artifact, calib_x, x)
    record = {"triggered_by": gate["reasons"], "ranking": ranking[:10], "attempts": []}
    limit = max(1, int(len(ranking) * max_fraction))
    calib_size = calib_size or artifact.details.get("calibration", {}).get("samples")
    k, validation = 1, None
    while k <= limit:
        keep = [r["layer"] for r in ranking[:k]]
        artifact = compile_artifact(model, target, calib, out_dir, spec=spec, calib_size=calib_size, keep_float=keep)
        validation = validate(artifact, teacher, val, model, threads=target.latency.threads, measure_latency=False)
        gate = evaluate_gate(target, validation)
        record["attempts"].append({"kept_float": keep, "accuracy": validation["artifact"]["accuracy"],
                                   "passed": gate["passed"]})
        if gate["passed"]:
            break
        k *= 2
    record["kept_float"] = [{"layer": r["layer"], "op": "weighted",
                             "reason": f"sensitivity: quantized alone it moves the logits by KL {r['kl']:.4f} "
                                       f"(top-1 agreement {r['agreement']:.4f}); kept float so the gate passes"}
                            for r in ranking[: len(record["attempts"][-1]["kept_float"])]]
    record["passed"] = gate["passed"]
    artifact.details["kept_float"] = record["kept_float"]
    artifact.details["sensitivity"] = record
    artifact.save()
    return artifact, validation, record
