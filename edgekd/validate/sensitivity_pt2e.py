"""Per-layer sensitivity for ExecuTorch (PT2E int8): each weighted layer quantized alone, in torch.

The ``.pte`` is a compiled program with nothing to re-quantize, so the ranking is computed on the
PT2E graph the backend lowers: the model quantized with XNNPACK's config and the artifact's
calibration recipe, one layer at a time (all others float), its logits compared with the float
model's on held-out data (mean KL, top-1 agreement). The float fallback then keeps the worst
layers float in the ``.pte`` (``keep_float``, module names).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from edgekd.calibrate import calibrator_for
from edgekd.targets import load_recipe
from edgekd.validate.metrics import agreement, mean_kl

log = logging.getLogger(__name__)
PROBE_BATCH = 16  # the probes are exported at this batch (the .pte's static batch is often 1)


def _run(model, x: np.ndarray) -> np.ndarray:
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), PROBE_BATCH):
            chunk = x[i : i + PROBE_BATCH]
            if len(chunk) < PROBE_BATCH:  # static shapes: pad the tail, keep its rows
                pad = np.zeros((PROBE_BATCH - len(chunk), *chunk.shape[1:]), np.float32)
                outs.append(model(torch.from_numpy(np.concatenate([chunk, pad])))[: len(chunk)].numpy())
            else:
                outs.append(model(torch.from_numpy(chunk)).numpy())
    return np.concatenate(outs)


def pt2e_sensitivity(model: torch.nn.Module, artifact, target, calib: np.ndarray, x: np.ndarray) -> list[dict]:
    """Each layer of ``artifact.details["quantized_layers"]``, quantized alone: KL and agreement vs float,
    worst first (the rows :func:`edgekd.validate.sensitivity.recover_accuracy` ranks by)."""
    from edgekd.backends.executorch import quantize_pt2e  # heavy SDK: imported on first use

    recipe = load_recipe((artifact.details.get("calibration") or {}).get("recipe") or target.calibration.recipe)
    calibrator = calibrator_for(recipe.method, recipe.percentile)
    per_channel = target.format.weight_granularity == "per_channel"
    model = model.eval()
    example = (torch.zeros(PROBE_BATCH, *artifact.input_shape),)
    calib = np.ascontiguousarray(calib[: len(calib) - len(calib) % PROBE_BATCH] if len(calib) >= PROBE_BATCH
                                 else calib, np.float32)
    reference = _run(model, x)
    rows = []
    for layer in artifact.details.get("quantized_layers", []):
        probe = quantize_pt2e(model, example, calib, per_channel, PROBE_BATCH, calibrator, only=[layer])
        out = _run(probe, x)
        rows.append({"layer": layer, "kl": mean_kl(reference, out), "agreement": agreement(out, reference)})
    log.info("ranked %d layers of %s by sensitivity (PT2E, quantized alone)", len(rows), artifact.path.name)
    return sorted(rows, key=lambda r: r["kl"], reverse=True)
