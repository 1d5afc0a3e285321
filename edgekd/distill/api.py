"""``edgekd.distill``: the distillation stage on its own, optionally quantization-aware.

    student = edgekd.distill(teacher, student, train, val, loss=edgekd.losses.TopKLD(k=5),
                             target="x86-cpu-onnxruntime", qat=True, epochs=12, out_dir="runs/kd")

With ``qat=True`` the run has two phases: float distillation for ``epochs - qat_epochs`` epochs,
then BatchNorm folding, fake quantizers for the target's numeric format (calibrated on training
samples) and ``qat_epochs`` more epochs of distillation at ``qat_lr``, taught by ``qat_teacher``
(:mod:`edgekd.distill.qad`: the frozen float student, the teacher, or both). The returned QAT
student compiles to a QDQ ONNX model with its learned scales (:func:`edgekd.quant.export_qdq`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import torch
from torch import nn

from edgekd._io import atomic_write, write_json
from edgekd.data.sources import ArrayData, as_array_data
from edgekd.distill import ddp, qad, record
from edgekd.distill.device import check_device, resolve_device
from edgekd.distill.losses import KD, DistillLoss
from edgekd.distill.trainer import TrainConfig, TrainResult, fit
from edgekd.errors import CheckpointError, ConfigError
from edgekd.quant import prepare_qat
from edgekd.schema.student import card_of, set_card
from edgekd.targets import NumericFormat, Target, load_target

log = logging.getLogger(__name__)


def resolve_format(target) -> NumericFormat:
    """The numeric format of a target name/path/:class:`Target`, or a bare :class:`NumericFormat`."""
    if isinstance(target, NumericFormat):
        return target
    if target is None:
        raise ConfigError("qat=True needs target=... (a target name, Target, or NumericFormat)")
    return load_target(target).format


def calibration_inputs(data: ArrayData, size: int = 256, seed: int = 0) -> torch.Tensor:
    """``size`` training inputs drawn without replacement (labels may be missing, so not stratified)."""
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:size]
    return data.x[index.sort().values]


def qat_fit(student: nn.Module, train: ArrayData, val: ArrayData | None, loss: DistillLoss,
            teacher: nn.Module | None, config: TrainConfig, fmt: NumericFormat, *, qat_epochs: int | None = None,
            qat_lr: float | None = None, calib_size: int = 256, teacher_cache=None,
            qat_teacher: str | None = None, qat_self_weight: float = qad.DEFAULT_SELF_WEIGHT) -> TrainResult:
    """Float distillation, then QAT distillation in ``fmt``; both phases checkpoint and resume.

    ``config.epochs`` is the total; ``qat_epochs`` (default a third, at least 1) of them run
    quantization-aware at ``qat_lr`` (default ``config.lr / 10``). ``qat_teacher`` picks who
    teaches them (None: ``qad.DEFAULT_QAT_TEACHER``); with ``"self"`` and no float epochs, the
    student as given is its own teacher. ``card_of(model).qat["teacher"]`` records the choice.
    """
    qad.check_qat_teacher(qat_teacher, loss, qat_self_weight)
    choice = qad.resolve(qat_teacher, loss, teacher)
    q_epochs = max(1, config.epochs // 3) if qat_epochs is None else int(qat_epochs)
    f_epochs = config.epochs - q_epochs
    if q_epochs < 1 or f_epochs < 0:
        raise ConfigError(f"qat_epochs={qat_epochs} must be between 1 and epochs={config.epochs}")
    ckpt = Path(config.checkpoint) if config.checkpoint else None
    qckpt = ckpt.with_name(ckpt.stem + ".qat" + ckpt.suffix) if ckpt else None
    if config.resume and not any(p is not None and p.exists() for p in (ckpt, qckpt)):
        raise CheckpointError(f"resume requested but there is no checkpoint at {ckpt} or {qckpt}")
    history, resumed = [], 0
    if f_epochs:
        cfg = dataclasses.replace(config, epochs=f_epochs, resume=bool(config.resume and ckpt and ckpt.exists()))
        result = fit(student, train, val, loss, teacher, cfg, desc="distill", teacher_cache=teacher_cache)
        history += [{"phase": "float", **r} for r in result.history]
        student, resumed = result.model, result.resumed_from_epoch
    q_teacher = qad.qat_teacher_module(choice, student, teacher, qat_self_weight)  # frozen before QAT starts
    qstudent = prepare_qat(student, fmt, calibration_inputs(train, calib_size, config.seed))
    cfg = dataclasses.replace(config, epochs=q_epochs, lr=qat_lr or config.lr / 10,
                              checkpoint=str(qckpt) if qckpt else None,
                              resume=bool(config.resume and qckpt and qckpt.exists()))
    result = fit(qstudent, train, val, loss, q_teacher, cfg, desc=f"qat {fmt.key}",
                 teacher_cache=teacher_cache if q_teacher is teacher else None)
    history += [{"phase": "qat", **r} for r in result.history]
    set_card(result.model, qat={**card_of(result.model).qat, "teacher": choice,
                                **({"self_weight": float(qat_self_weight)} if choice == "both" else {})})
    return TrainResult(result.model, history, resumed + result.resumed_from_epoch)


def distill(teacher: nn.Module | None, student: nn.Module, train, val=None, *, loss: DistillLoss | None = None,
            target: str | Target | NumericFormat | None = None, qat: bool = False, epochs: int = 10,
            qat_epochs: int | None = None, batch_size: int = 128, lr: float = 3e-3, qat_lr: float | None = None,
            seed: int = 0, augment: bool = False, out_dir: str | Path | None = None, resume: bool = False,
            progress: bool = True, calib_size: int = 256, qat_teacher: str | None = None,
            qat_self_weight: float = qad.DEFAULT_SELF_WEIGHT, device: str = "cpu") -> nn.Module:
    """Distill ``teacher`` into ``student``; quantization-aware in ``target``'s format when ``qat``.

    Args:
        teacher: a trained ``nn.Module`` (frozen here); None only for a loss that needs no teacher.
        student: the model to train (trained in place for float training; QAT returns a new,
            prepared copy).
        train, val: ``(X, y)`` arrays, a Dataset, a DataLoader or ``ArrayData``. In ``ArrayData``
            a label of -1 (``edgekd.losses.UNLABELED``) marks a transfer-set sample without label.
        loss: a :class:`DistillLoss` (default ``KD()``), e.g. ``edgekd.losses.TopKLD(k=5)``.
        target: target name/path/``Target`` or a ``NumericFormat``; its format drives QAT.
        qat: train the last ``qat_epochs`` epochs under the target's fake quantizer.
        qat_teacher: who teaches those epochs: ``"self"`` (the float student, frozen when QAT
            starts), ``"teacher"`` or ``"both"`` (logits ``w·self + (1-w)·teacher``, ``w`` =
            ``qat_self_weight``); None: :data:`edgekd.distill.qad.DEFAULT_QAT_TEACHER`.
        out_dir: where checkpoints, ``student.pt``, ``student.json`` (architecture), ``distill.json``
            (per-epoch history) and ``summary.json`` (val top-1, loss, QAT) go, as ``edgekd distill``
            writes them (rank 0 only); None: nowhere.
        resume: continue from the checkpoints in ``out_dir`` (at most one epoch is lost).
        device: where the training steps run: ``"cpu"`` (default, bit-reproducible), ``"cuda"``,
            ``"cuda:N"`` or ``"auto"`` (:mod:`edgekd.distill.device`); checked before any training.
            The returned student is on the CPU either way (a checkpoint resumes on any device).

    Returns:
        The trained student, in eval mode; ``student.edgekd_history`` holds the per-epoch records.
        Under ``torchrun`` every rank returns it; only rank 0 writes files.
    """
    started = time.perf_counter()
    qad.check_qat_teacher(qat_teacher, loss, qat_self_weight)
    if qat_teacher is not None and not qat:
        raise ConfigError(f"qat_teacher={qat_teacher!r} only applies with qat=True")
    check_device(device)
    ctx = ddp.setup(device=device)
    train = as_array_data(train, "train")
    val = as_array_data(val, "val") if val is not None else None
    loss = loss or KD()
    out = Path(out_dir) if out_dir is not None else None
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, augment=augment,
                         checkpoint=str(out / "distill.ckpt") if out else None, resume=resume,
                         progress=progress, device=device)
    if qat:
        result = qat_fit(student, train, val, loss, teacher, config, resolve_format(target),
                         qat_epochs=qat_epochs, qat_lr=qat_lr, calib_size=calib_size, qat_teacher=qat_teacher,
                         qat_self_weight=qat_self_weight)
    else:
        result = fit(student, train, val, loss, teacher, config, desc="distill")
    model = result.model.eval()
    model.edgekd_history = result.history
    if out is not None and ctx.is_main:
        _write_outputs(out, model, loss, result)
        summary = record.summary(model, teacher, train, val, loss, seed=seed, epochs=epochs,
                                 resumed_from_epoch=result.resumed_from_epoch,
                                 seconds=round(time.perf_counter() - started, 2), device=str(resolve_device(device)))
        record.write(out, summary)
    ctx.barrier()
    return model


def _write_outputs(out: Path, model: nn.Module, loss: DistillLoss, result: TrainResult) -> None:
    atomic_write(out / "student.pt", lambda p: torch.save(model.state_dict(), p))
    write_json(out / "distill.json", {"loss": [type(loss).__name__, loss.config()], "history": result.history,
                                      "resumed_from_epoch": result.resumed_from_epoch,
                                      "qat": card_of(model).qat})
