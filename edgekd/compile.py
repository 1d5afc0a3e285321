"""``edgekd.compile``: any ``nn.Module`` → a compiled artifact for a target, calibrated; with ``val``, gated in
its runtime (:mod:`edgekd.validate.gated`). The compiler itself is :mod:`edgekd.compiler`."""

from __future__ import annotations

from torch import nn

from edgekd._verbs import make_callable
from edgekd.backends.base import Artifact, get_backend
from edgekd.compiler import MIN_CALIBRATION_SAMPLES, select_calibration  # noqa: F401 - their old home
from edgekd.compiler import compile_artifact, model_for_backend
from edgekd.data.spec import PreprocessSpec
from edgekd.targets import Target, load_target
from edgekd.validate.gated import gate_artifact


def compile(model: nn.Module, target: str | Target = "x86-cpu-onnxruntime", calib=None, out_dir="build", *,
            spec: PreprocessSpec | None = None, calib_size: int | None = None,
            keep_float: list[str] | None = None, val=None, teacher: nn.Module | None = None,
            validate_samples: int | None = None) -> Artifact:  # noqa: A001
    """Compile ``model`` for ``target`` into ``out_dir/<target>/``.

    Args:
        model: any ``nn.Module`` taking float32 NCHW input.
        target: a target name or TOML path.
        calib: calibration data, as ``(X, y)``, a Dataset or a DataLoader (labels only pick samples),
            or a bare float32 NCHW array.
        out_dir: parent folder; the artifact folder is replaced only once compilation succeeded.
        spec: the preprocessing spec written beside the artifact (default: pass-through).
        calib_size: overrides the calibration recipe's sample count.
        keep_float: layer (node) names to leave in float, e.g. from sensitivity analysis.
        val: validation data (as ``calib``; a bare array is labelled with the reference's own
            predictions). Given, the artifact runs in its runtime and the target's gate is applied
            against ``teacher`` (default: ``model``, the fp32 original); if it misses and the
            backend can keep layers in float, the per-layer float fallback is tried. The verdict is
            ``artifact.verdict`` (:class:`~edgekd.validate.gates.GateVerdict`) and
            ``artifact.details["gate"]``; a failed gate is returned, not raised: check ``verdict.passed``.
        teacher: the reference the gate compares with (default: ``model``).
        validate_samples: cap on validation samples (see :func:`edgekd.validate.validate`).
    """
    artifact = compile_artifact(model, target, calib, out_dir, spec=spec, calib_size=calib_size,
                                keep_float=keep_float)
    if val is not None:  # the gate compares against the same float twin the backend was given
        target = load_target(target)
        model, _ = model_for_backend(model, get_backend(target.backend), target)
        artifact = gate_artifact(artifact, model, target, calib, val, out_dir, teacher=teacher, spec=spec,
                                 calib_size=calib_size, validate_samples=validate_samples)
    return artifact


make_callable(__name__, compile)  # edgekd.compile(...) runs the verb; see edgekd._verbs
