"""``edgekd.build``: teacher + data + target → distilled, compiled, validated artifact + report."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from edgekd.backends.base import Artifact
from edgekd.baseline import TeacherArtifact, attach_baseline, choose_ship, compile_teacher
from edgekd.chance import add_chance_warnings
from edgekd.compile import compile as compile_model
from edgekd.data.builtin import load_train_val
from edgekd.data.sources import ArrayData, as_array_data
from edgekd.data.spec import PreprocessSpec, identity_spec
from edgekd.data.splits import split
from edgekd.distill.losses import KD, DistillLoss
from edgekd.distill.trainer import TrainConfig, evaluate, fit
from edgekd.errors import DataError
from edgekd.outdir import guarded
from edgekd.models import DEFAULT_STUDENT, create_student, default_teacher
from edgekd.models.teacher import load_cached_teacher, save_cached_teacher, teacher_cache_path
from edgekd.report.writers import build_report, write_reports
from edgekd.targets import Target, load_target
from edgekd.validate import evaluate_gate, validate

log = logging.getLogger(__name__)

TEACHER_RECIPE = {"epochs": 12, "batch_size": 128, "lr": 3e-3, "augment": True}


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
        return (self.report.get("ship") or {}).get("choice", "student")

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
          channels: int | None = None, ship: str = "auto") -> BuildResult:
    """Distill a student from ``teacher`` for ``target``, compile it, validate it, write reports.

    Args:
        teacher: a trained ``nn.Module``; None trains (or loads from cache) edgekd's default teacher.
        train, val: ``(X, y)`` float32 NCHW arrays, a Dataset or a DataLoader. With neither, the
            built-in ``dataset`` (default ``mnist5k``) is used. Without ``val``, a stratified
            ``val_fraction`` of ``train`` is held out.
        target: a target name (``x86-cpu-onnxruntime``) or a path to its TOML file.
        out_dir: the artifact lands in ``out_dir/<target>/``.
        student: an ``nn.Module``, a registry name, or ``{"name": ..., **kwargs}``; default: a small ResNet.
        spec: preprocessing spec of user data (default: pass-through of already-normalized arrays).
        loss: the distillation loss (default: Hinton KD, T=1, CE/KD weights 0.5/0.5).
        resume: continue an interrupted distillation from its last epoch checkpoint.
        search: without ``student``, search one for the target (``edgekd.search``, DisWOT score);
            ``search=False`` takes the default student.
        qat: distill the last third of the epochs quantization-aware in ``target.format``
            (``edgekd.distill.api.qat_fit``); the artifact then carries the learned scales.
        qat_teacher: who teaches the QAT epochs: ``"self"`` (the frozen float student),
            ``"teacher"`` or ``"both"`` (:mod:`edgekd.distill.qad`); None: its default. In report.json.
        data_dir: your images, ``data_dir/<class>/<image>`` (the ``folder`` dataset); labels are the
            sorted class folder names. ``val_dir``: validation images in the same class folders
            (default: a stratified ``val_fraction`` of ``data_dir``). ``image_size``: N or (H, W)
            pixels (default 32); ``channels``: 1 (grayscale) or 3 (RGB, default).
        ship: which artifact ``report["ship"]`` names for the device: ``"auto"`` (the student only
            when its artifact is faster than the teacher compiled for the same runtime), ``"student"``
            or ``"teacher"``. The teacher is always compiled too, into ``out_dir/teacher/<target>/``.
    """
    started = time.perf_counter()
    target = load_target(target)
    out_dir = Path(out_dir)
    data = _prepare_data(train, val, dataset, spec, val_fraction, seed, data_dir=data_dir, val_dir=val_dir,
                         image_size=image_size, channels=channels)
    teacher, teacher_info = _prepare_teacher(teacher, data, seed, progress)
    choose_ship(ship, {}, {})  # a bad choice is bad input: fail before any work
    # the baseline comes first: the search must beat the teacher compiled for this runtime
    baseline = compile_teacher(teacher, target, data, out_dir, calib_size=calib_size, latency_runs=latency_runs)
    student_model = _prepare_student(student, data, teacher, target, search=search, seed=seed,
                                     out_dir=out_dir / "_search" / target.name, progress=progress,
                                     baseline=baseline)
    loss = loss or KD()
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                         augment=data.augment if augment is None else augment, progress=progress,
                         checkpoint=str(out_dir / "_work" / target.name / "distill.ckpt"), resume=resume)
    trained = distill_step(student_model, teacher, teacher_info, data, loss, config, target, qat=qat,
                           qat_teacher=qat_teacher)
    result = deliver_step(trained, teacher, teacher_info, data, loss, config, target, out_dir, calib_size,
                          latency_runs, started, baseline=baseline, ship=ship)
    _write_build_outputs(result, data, teacher, teacher_info, loss, config, out_dir, started)
    return result


def distill_step(student_model, teacher, teacher_info, data: "_Data", loss, config, target: Target,
                 qat: bool = False, qat_teacher: str | None = None):
    """The distillation of ``build``, reusable by ``build_all`` for every target sharing a numeric format."""
    log.info("distilling %s into %s for %d epochs", teacher_info["arch"], student_model.edgekd_arch, config.epochs)
    if qat and target.format.trains_aware:
        from edgekd.distill.api import qat_fit

        return qat_fit(student_model, data.train, data.val, loss, teacher, config, target.format,
                       qat_teacher=qat_teacher)
    return fit(student_model, data.train, data.val, loss, teacher, config, desc="distill")


def deliver_step(trained, teacher, teacher_info, data: "_Data", loss, config, target: Target, out_dir: Path,
                 calib_size, latency_runs: int, started: float, measure_latency: bool = True, *,
                 baseline: TeacherArtifact | None = None, ship: str = "auto") -> BuildResult:
    """Compile the distilled student for ``target``, validate it in its runtime, write its reports."""
    artifact = compile_model(trained.model, target, data.train, out_dir, spec=data.spec, calib_size=calib_size)
    if target.gate.speed_gate:  # ship fp32 when int8 is not faster here
        from edgekd.validate.speed import speed_gate

        artifact = speed_gate(artifact, target)[0]
    return validate_step(artifact, trained, teacher, teacher_info, data, loss, config, target, latency_runs, started,
                         measure_latency, baseline=baseline, ship=ship)


def validate_step(artifact: Artifact, trained, teacher, teacher_info, data: "_Data", loss, config, target: Target,
                  latency_runs: int, started: float, measure_latency: bool = True, *,
                  baseline: TeacherArtifact | None = None, ship: str = "auto") -> BuildResult:
    """Validate a compiled artifact in its runtime against the teacher, gate it, write its reports."""
    student_model = trained.model
    validation = validate(artifact, teacher, data.val, student_model, threads=target.latency.threads,
                          latency_runs=latency_runs, measure_latency=measure_latency)
    gate = evaluate_gate(target, validation)
    from edgekd.validate.sensitivity import can_recover, recover_accuracy

    if not gate["passed"] and can_recover(artifact, target, validation):  # keep sensitive layers float, rebuild
        artifact = recover_accuracy(student_model, target, data.train, data.val, teacher, artifact.folder.parent,
                                    artifact, gate, spec=data.spec)[0]
        validation = validate(artifact, teacher, data.val, student_model, threads=target.latency.threads,
                              latency_runs=latency_runs, measure_latency=measure_latency)
        gate = evaluate_gate(target, validation)
    report = build_report(target=target, artifact=artifact, validation=validation, gate=gate, data=data,
                          teacher_info=teacher_info, student=student_model, loss=loss, config=config,
                          history=trained.history, resumed_from=trained.resumed_from_epoch,
                          seconds=time.perf_counter() - started, search=getattr(student_model, "edgekd_search", None))
    from edgekd.hw.model import report_prediction

    report["artifact"].update(report_prediction(report, target))  # predicted vs measured latency
    if baseline is not None:
        measured = (report["artifact"].get("latency_ms") or {}).get("p50") if measure_latency else None
        attach_baseline(report, baseline.record, {"kind": "measured" if measured else "none", "ms": measured}, ship)
    add_chance_warnings(report)  # a teacher or student near chance: report["warnings"]
    write_reports(report, artifact.folder)
    return BuildResult(report, artifact, student_model, teacher, gate["passed"], artifact.folder, trained.history,
                       teacher_artifact=baseline.artifact if baseline is not None else None)


def _write_build_outputs(result: BuildResult, data, teacher, teacher_info, loss, config, out_dir: Path,
                        started: float) -> None:
    """``out_dir/manifest.json`` and ``out_dir/report.html`` of a one-target build, as ``edgekd build`` writes them."""
    from dataclasses import asdict

    from edgekd.matrix import FAILED, NOT_RUN, PASSED, MatrixResult, TargetResult
    from edgekd.report.outputs import write_outputs

    gate = result.report["gate"]
    status = NOT_RUN if gate.get("status") == NOT_RUN else PASSED if result.passed else FAILED
    target = result.report["target"]["name"]
    matrix = MatrixResult([TargetResult(target, status, "; ".join(gate.get("reasons") or []), result.report,
                                        result.artifact, result.teacher_artifact)], out_dir,
                          seconds=time.perf_counter() - started)
    settings = {k: v for k, v in asdict(config).items() if k != "checkpoint"}
    write_outputs(matrix, data, teacher, teacher_info, loss, settings, {}, None, True)
    result.manifest_path, result.html_path = matrix.manifest_path, matrix.html_path


@dataclass
class _Data:
    name: str
    train: ArrayData
    val: ArrayData
    spec: PreprocessSpec
    augment: bool
    builtin: bool

    @property
    def num_classes(self) -> int:
        return max(self.train.num_classes, self.val.num_classes)


def _prepare_data(train, val, dataset, spec, val_fraction, seed, *, data_dir=None, val_dir=None, image_size=None,
                  channels=None) -> _Data:
    if train is None:
        if val is not None:
            raise DataError("val was given without train; pass both, or neither for the built-in dataset")
        bundle, train_data, val_data = load_train_val(dataset, data_dir, val_dir, image_size, channels,
                                                      val_fraction=val_fraction, seed=seed)
        return _Data(bundle.name, train_data, val_data, bundle.spec, True, True)
    if dataset is not None or data_dir is not None:
        raise DataError("pass either dataset=... / data_dir=... or train=..., not both")
    train_data = as_array_data(train, "train")
    if val is None:
        val_data, train_data = split(train_data, max(1, int(len(train_data) * val_fraction)), seed)
    else:
        val_data = as_array_data(val, "val")
    if val_data.input_shape != train_data.input_shape:
        raise DataError(f"val inputs have shape {val_data.input_shape} but train inputs {train_data.input_shape}")
    classes = max(train_data.num_classes, val_data.num_classes)
    spec = spec or identity_spec(train_data.input_shape, classes)
    if tuple(spec.input_shape) != train_data.input_shape:
        raise DataError(f"spec.input_shape {tuple(spec.input_shape)} does not match the data's "
                        f"{train_data.input_shape}")
    return _Data(f"user-{_digest(train_data)}", train_data, val_data, spec, False, False)


def _digest(data: ArrayData) -> str:
    """A content key for user data, so a default teacher trained on it is cached per dataset."""
    import hashlib

    h = hashlib.sha256(data.x.numpy().tobytes())
    h.update(data.y.numpy().tobytes())
    return h.hexdigest()[:12]


def _prepare_teacher(teacher, data: _Data, seed: int, progress: bool):
    if teacher is None:
        teacher = default_teacher(data.train.input_shape, data.num_classes)
        # an image folder is keyed by its content: two folders of the same name are different data
        key = f"{data.name}-{_digest(data.train)}" if data.name.startswith("folder:") else data.name
        recipe = {**TEACHER_RECIPE, "dataset": key, "train_size": len(data.train)}
        path = teacher_cache_path(key, type(teacher).__name__, seed, recipe)
        meta = load_cached_teacher(teacher, path)
        trained_now = meta is None
        if trained_now:
            config = TrainConfig(epochs=TEACHER_RECIPE["epochs"], batch_size=TEACHER_RECIPE["batch_size"],
                                 lr=TEACHER_RECIPE["lr"], seed=seed, augment=TEACHER_RECIPE["augment"],
                                 progress=progress)
            from edgekd.distill.losses import CE

            # minutes on a busy CPU: say so before it starts
            log.info("training the teacher (%s) for %d epochs on %d %s images; cached for later builds",
                     type(teacher).__name__, config.epochs, len(data.train), data.name)
            fit(teacher, data.train, None, CE(), None, config, desc="teacher")
            meta = {"val_accuracy": evaluate(teacher, data.val), "recipe": recipe}
            save_cached_teacher(teacher, path, meta)
        info = {"arch": type(teacher).__name__, "source": "edgekd default, " + ("trained now" if trained_now
                                                                               else "cached"),
                "trained_now": trained_now, "cache": str(path), **meta}
    else:
        info = {"arch": type(teacher).__name__, "source": "user", "trained_now": False}
    _check_teacher_fits(teacher, data)
    info["params"] = sum(p.numel() for p in teacher.parameters())
    from edgekd.chance import chance_warnings

    accuracy = info["val_accuracy"] if "val_accuracy" in info else evaluate(teacher.eval(), data.val)
    for warning in chance_warnings({"dataset": {"classes": list(data.spec.labels), "train": len(data.train)},
                                    "teacher": {"accuracy": accuracy, "recipe": info.get("recipe")}}):
        log.warning("%s", warning["message"])  # once per build; each report records it too
    return teacher.eval(), info


def _check_teacher_fits(teacher: nn.Module, data: _Data) -> None:
    """Fail before any training when the teacher cannot consume the data or has the wrong classes."""
    probe = data.train.x[:2]
    try:
        with torch.no_grad():
            out = teacher.eval()(probe)
    except Exception as exc:  # noqa: BLE001 - whatever the model raises, the cause is the shape
        raise DataError(f"the teacher cannot run on the data's inputs of shape {tuple(probe.shape[1:])} "
                        f"(C, H, W): {type(exc).__name__}: {exc}") from exc
    if out.ndim != 2:
        raise DataError(f"the teacher must return logits of shape (N, classes), got {tuple(out.shape)}")
    if out.shape[1] != data.num_classes or out.shape[1] != data.spec.num_classes:
        raise DataError(f"the teacher outputs {out.shape[1]} classes but the labels have {data.num_classes} "
                        f"(largest label {data.num_classes - 1}) and the spec {data.spec.num_classes}")


def _prepare_student(student, data: _Data, teacher: nn.Module | None = None, target: Target | None = None, *,
                     search: bool = True, seed: int = 0, out_dir: Path | None = None, progress: bool = False,
                     baseline: TeacherArtifact | None = None) -> nn.Module:
    shape, classes = data.train.input_shape, data.num_classes
    if student is None and search and teacher is not None and target is not None:
        from edgekd.search.build import search_student

        return search_student(teacher, data.train, target, seed=seed, out_dir=out_dir, progress=progress,
                              teacher_latency=baseline.record if baseline is not None else None)
    if student is None:
        student = dict(DEFAULT_STUDENT)
    if isinstance(student, str):
        student = {"name": student}
    if isinstance(student, dict):
        kwargs = dict(student)
        return create_student(kwargs.pop("name"), shape, classes, **kwargs)
    if isinstance(student, nn.Module):
        student = copy.deepcopy(student)
        student.edgekd_arch = getattr(student, "edgekd_arch", {"name": type(student).__name__})
        return student
    raise DataError(f"student must be an nn.Module, a registry name or a dict, got {type(student).__name__}")
