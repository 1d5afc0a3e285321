"""Check the search's finalists where the device is this machine: compile each for the target and time its
artifact in the target's runtime, against the teacher compiled the same way.

A latency model can be badly wrong for tiny networks (an int8 graph of a few thousand parameters is
dominated by per-node overhead that a model fitted on larger ones under-predicts). Where the target runs
here, a few compiles settle it: the winner is the best-scoring finalist whose artifact is measured
faster than the compiled teacher. Latency does not depend on trained weights, so the untrained
candidate is compiled (calibrated on the training data like any build).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import torch

from edgekd.backends.base import get_backend
from edgekd.compile import compile as compile_model
from edgekd.schema.student import arch_of
from edgekd.validate.latency import runner_latency
from edgekd.validate.speed import speed_gate

log = logging.getLogger(__name__)

VERIFY_RUNS = 100


def measure_artifact_ms(model, target, train, folder: Path, runs: int = VERIFY_RUNS) -> float:
    """p50 milliseconds of ``model`` compiled for ``target`` as a build ships it (after the target's speed
    gate: int8, or fp32 where clearly faster) and run at batch 1 in its runtime."""
    artifact = compile_model(model, target, train, folder)
    if target.gate.speed_gate:  # as the build ships it (the teacher row is the faster of its two builds)
        artifact = speed_gate(artifact, target, arch=arch_of(model))[0]
    runner = get_backend(artifact.backend).load(artifact, threads=target.latency.threads)
    x = train.x[:1].numpy()
    return float(runner_latency(runner, x, target.latency.threads, runs)["p50"])


def verify_finalists(finalists: list[dict], build, target, train, teacher_ms: float, out_dir: Path | None,
                     seed: int = 0) -> tuple[dict | None, list[dict]]:
    """(the first finalist measured faster than ``teacher_ms`` or None, every finalist with its measurement).

    ``build(arch) -> nn.Module``; ``finalists`` best score first. Compiles land in ``out_dir/verify``
    (removed afterwards), or a temporary folder when ``out_dir`` is None.
    """
    root = Path(out_dir) / "verify" if out_dir is not None else Path(tempfile.mkdtemp(prefix="edgekd-verify-"))
    checked, winner = [], None
    try:
        for i, fin in enumerate(finalists):
            torch.manual_seed(seed)
            try:
                ms = measure_artifact_ms(build(fin["arch"]), target, train, root / str(i))
            except Exception as exc:  # noqa: BLE001 - a finalist that does not compile is not a winner
                log.warning("finalist %s not measured: %s", fin["arch"], exc)
                ms = None
            checked.append({**fin, "measured_artifact_ms": ms,
                            "faster_than_teacher": None if ms is None else ms < teacher_ms})
            if winner is None and ms is not None and ms < teacher_ms:
                winner = checked[-1]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return winner, checked
