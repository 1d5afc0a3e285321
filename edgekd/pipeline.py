"""``edgekd.build``: teacher + data + target → distilled, compiled, validated artifact + report.

``build`` is ``build_all`` with one target (:func:`edgekd.matrix.run_build`), except that a stage's
exception reaches the caller instead of becoming the target's ``error`` status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from edgekd.backends.base import Artifact
from edgekd.data.spec import PreprocessSpec
from edgekd.distill.losses import DistillLoss
from edgekd.errors import MissingExtraError
from edgekd.matrix import run_build
from edgekd.schema.record import Report
from edgekd.stages.context import split_arguments
from edgekd.stages.preflight import guarded
from edgekd.targets import Target


@dataclass
class BuildResult:
    """What ``edgekd.build`` returns: the report dict, the artifact, and the models."""

    report: dict
    artifact: Artifact
    student: nn.Module
    teacher: nn.Module
    passed: bool
    out_dir: Path
    history: list = field(default_factory=list)
    teacher_artifact: Artifact | None = None  # the teacher compiled for the same target: the row to beat
    manifest_path: Path | None = None
    html_path: Path | None = None

    @property
    def artifact_path(self) -> Path:
        return Path(self.artifact.path)

    @property
    def ship(self) -> str:
        """``"student"`` or ``"teacher"``: which artifact the report says to put on the device."""
        ship = Report.from_dict(self.report).ship
        return ship.choice if ship is not None else "student"

    @property
    def shipped_artifact(self) -> Artifact:
        return self.teacher_artifact if self.ship == "teacher" and self.teacher_artifact else self.artifact


@guarded("target")  # checks every argument, then locks out_dir and supersedes old reports
def build(teacher: nn.Module | None = None, train=None, val=None, target: str | Target = "x86-cpu-onnxruntime",
          out_dir: str | Path = "build", *, student: nn.Module | str | dict | None = None,
          qat_teacher: str | None = None,
          dataset: str | None = None, spec: PreprocessSpec | None = None, loss: DistillLoss | None = None,
          epochs: int = 30, batch_size: int = 128, lr: float = 3e-3, seed: int = 0, augment: bool | None = None,
          calib_size: int | None = None, val_fraction: float = 0.2, resume: bool = False,
          progress: bool = True, latency_runs: int = 200, search: bool = True, qat: bool = False,
          data_dir: str | Path | None = None, val_dir: str | Path | None = None, image_size=None,
          channels: int | None = None, ship: str = "auto", device: str = "cpu") -> BuildResult:
    """Distill a student from ``teacher`` for ``target``, compile it, validate it, write reports.

    Args:
        teacher: a trained ``nn.Module``; None trains (or loads from cache) edgekd's default teacher.
        train, val: ``(X, y)`` float32 NCHW arrays, a Dataset or a DataLoader. With neither, the
            built-in ``dataset`` (default ``mnist5k``) is used. Without ``val``, a stratified
            ``val_fraction`` of ``train`` is held out.
        target: a target name (``x86-cpu-onnxruntime``) or a path to its TOML file.
        out_dir: the artifact lands in ``out_dir/<target>/``.
        student: an ``nn.Module``, a registry name, or ``{"name": ..., **kwargs}``; default: a small ResNet.
        spec: preprocessing spec of user data (default: pass-through of already-normalized arrays);
            with ``data_dir``, the images' size and normalization (your teacher's own).
        loss: the distillation loss (default: Hinton KD, T=1, CE/KD weights 0.5/0.5).
        resume: continue an interrupted distillation from its last epoch checkpoint.
        search: without ``student``, search one for the target (``edgekd.search``, FLOPs score);
            ``search=False`` takes the default student.
        qat: distill the last third of the epochs quantization-aware in ``target.format``
            (``edgekd.distill.api.qat_fit``); the artifact then carries the learned scales.
        qat_teacher: who teaches the QAT epochs: ``"self"`` (the frozen float student),
            ``"teacher"`` or ``"both"`` (:mod:`edgekd.distill.qad`); None: its default. In report.json.
        data_dir: your images, ``data_dir/<class>/<image>`` (the ``folder`` dataset); labels are the
            sorted class folder names. ``val_dir``: validation images in the same class folders
            (default: a stratified ``val_fraction`` of ``data_dir``). ``image_size``: N or (H, W)
            pixels (default 32); ``channels``: 1 (grayscale) or 3 (RGB, default). A folder of images
            without class sub-folders is unlabeled: ``teacher`` (required) labels it with its top-1
            class, accuracy then means agreement with the teacher, and its logits are cached in
            ``out_dir/cache`` (label-free distillation; a labelled ``val_dir`` keeps its labels).
        ship: which artifact ``report["ship"]`` names for the device: ``"auto"`` (the student only
            when its artifact is faster than the teacher compiled for the same runtime), ``"student"``
            or ``"teacher"``. The teacher is always compiled too, into ``out_dir/teacher/<target>/``.
        device: where distillation trains: ``"cpu"`` (default; rebuilds are bit-identical), ``"cuda"``,
            ``"cuda:N"`` or ``"auto"`` (:mod:`edgekd.distill.device`); the search, calibration, compilation
            and validation stay on the CPU. Recorded in the manifest's settings.
    """
    options, data_args = split_arguments(locals())
    matrix, ctx = run_build(teacher, data_args, [target], Path(out_dir), options, raise_errors=True)
    result = matrix.results[0]
    if result.artifact is None:  # not built here: build() promises an artifact, so say why there is none
        raise result.error or MissingExtraError(result.reason)
    return BuildResult(result.report, result.artifact, result.student, ctx.teacher, result.passed,
                       result.artifact.folder, result.history, teacher_artifact=result.teacher_artifact,
                       manifest_path=matrix.manifest_path, html_path=matrix.html_path)

