"""``compile(..., val=...)``: validate the artifact in its runtime, apply the target's gate, and on a
miss try the per-layer float fallback (:mod:`edgekd.validate.sensitivity`) where the backend has one.

The verdict goes on the artifact (``artifact.verdict`` and ``details["gate"]`` in ``artifact.json``),
so a failing artifact is never handed over without saying so.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from edgekd.backends.base import Artifact
from edgekd.data.sources import as_array_data
from edgekd.distill.trainer import predict
from edgekd.schema.sections import Status
from edgekd.targets import load_target
from edgekd.validate import validate
from edgekd.validate.gates import GateVerdict, gate_of
from edgekd.validate.sensitivity import QDQ_BACKENDS, can_recover, recover_accuracy

log = logging.getLogger(__name__)


def labelled(val, reference, name: str = "val"):
    """``val`` as ArrayData; a bare array is labelled with ``reference``'s own top-1 predictions."""
    if isinstance(val, (np.ndarray, torch.Tensor)):
        x = torch.as_tensor(np.ascontiguousarray(val, np.float32) if isinstance(val, np.ndarray) else val).float()
        return as_array_data((x, predict(reference, x).argmax(1)), name)
    return as_array_data(val, name)


def gate_artifact(artifact: Artifact, model, target, calib, val, out_dir, *, teacher=None, spec=None,
                  calib_size=None, validate_samples=None) -> Artifact:
    """Validate ``artifact`` against ``teacher`` (default ``model``), gate it, fall back to float layers if
    it misses and the backend can; returns the (possibly rebuilt) artifact with ``.verdict`` set."""
    target = load_target(target)
    reference = teacher if teacher is not None else model
    data = labelled(val, reference)
    student = model if teacher is not None else None
    kwargs = {"threads": target.latency.threads, "measure_latency": False, "target": target,
              "validate_samples": validate_samples}
    validation = validate(artifact, reference, data, student, **kwargs)
    gate = gate_of(target, validation)
    recovery = None
    if gate.status == Status.FAILED:  # a not-run artifact has no gate to recover
        if can_recover(artifact, target, validation):
            log.info("%s: gate missed (%s); keeping the most sensitive layers in float", target.name,
                     "; ".join(gate.reasons))
            calib_data = calib if not isinstance(calib, np.ndarray) else (calib, np.zeros(len(calib), np.int64))
            artifact, _, record = recover_accuracy(model, target, calib_data, data, reference, out_dir, artifact,
                                                   gate.to_dict(), spec=spec, calib_size=calib_size)
            validation = validate(artifact, reference, data, student, **kwargs)
            gate = gate_of(target, validation)
            recovery = {"attempted": True, "passed": gate.passed,
                        "kept_float": [k["layer"] for k in record["kept_float"]],
                        "attempts": [{"kept_float": a["kept_float"], "passed": a["passed"]}
                                     for a in record["attempts"]]}
        else:
            recovery = {"attempted": False, "reason": _why_no_recovery(artifact, target)}
    verdict = GateVerdict.from_validation(target, validation, gate)
    verdict.recovery = recovery
    artifact.details["gate"] = verdict.to_json()
    artifact.save()
    artifact.verdict = verdict  # not a dataclass field of Artifact: read back from details["gate"]
    (log.info if verdict.passed else log.warning)("%s: gate %s (agreement %s over %d samples)", target.name,
                                                  verdict.status, verdict.agreement, verdict.samples)
    return artifact


def _why_no_recovery(artifact: Artifact, target) -> str:
    if not target.gate.keep_sensitive_float:
        return "the target's gate sets keep_sensitive_float = false"
    if artifact.precision != "int8":
        return f"the artifact is {artifact.precision}: there is nothing to keep in float"
    if artifact.backend not in (*QDQ_BACKENDS, "executorch"):
        return (f"backend {artifact.backend} cannot keep layers in float (supported: "
                f"{', '.join((*QDQ_BACKENDS, 'executorch'))})")
    return "quantization-aware artifact (learned scales), or the fp32 model already misses the gate"
