"""Stage 2, prepare the teacher: the user's, or edgekd's default trained once per dataset and cached."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.chance import near_chance_warnings
from edgekd.data.sources import update_sha256
from edgekd.distill.losses import CE
from edgekd.distill.trainer import TrainConfig, evaluate, fit, predict
from edgekd.errors import DataError
from edgekd.models import default_teacher
from edgekd.models.teacher import load_cached_teacher, save_cached_teacher, teacher_cache_path
from edgekd.stages.context import Data
from edgekd.stages.data import data_digest
from edgekd.validate.metrics import per_class_accuracy

log = logging.getLogger(__name__)

TEACHER_RECIPE = {"epochs": 12, "batch_size": 128, "lr": 3e-3, "augment": True}


def prepare_teacher(teacher: nn.Module | None, data: Data, seed: int, progress: bool) -> tuple[nn.Module, dict]:
    """(the teacher in eval mode, its record for the report); checks it fits the data before any training."""
    if teacher is None:
        teacher, info = _default_teacher(data, seed, progress)
    else:
        info = {"arch": type(teacher).__name__, "source": "user", "trained_now": False}
    check_teacher_fits(teacher, data)
    info["params"] = sum(p.numel() for p in teacher.parameters())
    accuracy = info["val_accuracy"] if "val_accuracy" in info else evaluate(teacher.eval(), data.val)
    epochs = (info.get("recipe") or {}).get("epochs")  # known for edgekd's default teacher only
    for warning in near_chance_warnings(len(data.spec.labels), len(data.train), {"teacher": accuracy},
                                        {"teacher": epochs}):
        log.warning("%s", warning["message"])  # once per build; each report records it too
    return teacher.eval(), info


def _default_teacher(data: Data, seed: int, progress: bool) -> tuple[nn.Module, dict]:
    teacher = default_teacher(data.train.input_shape, data.num_classes)
    # an image folder is keyed by its content: two folders of the same name are different data
    key = f"{data.name}-{data_digest(data.train)}" if data.name.startswith("folder:") else data.name
    recipe = {**TEACHER_RECIPE, "dataset": key, "train_size": len(data.train)}
    path = teacher_cache_path(key, type(teacher).__name__, seed, recipe)
    meta = load_cached_teacher(teacher, path)
    trained_now = meta is None
    if trained_now:
        config = TrainConfig(epochs=TEACHER_RECIPE["epochs"], batch_size=TEACHER_RECIPE["batch_size"],
                             lr=TEACHER_RECIPE["lr"], seed=seed, augment=TEACHER_RECIPE["augment"], progress=progress)
        # minutes on a busy CPU: say so before it starts
        log.info("training the teacher (%s) for %d epochs on %d %s images; cached for later builds",
                 type(teacher).__name__, config.epochs, len(data.train), data.name)
        fit(teacher, data.train, None, CE(), None, config, desc="teacher")
        meta = {"val_accuracy": evaluate(teacher, data.val), "recipe": recipe}
        save_cached_teacher(teacher, path, meta)
    info = {"arch": type(teacher).__name__, "source": "edgekd default, " + ("trained now" if trained_now else "cached"),
            "trained_now": trained_now, "cache": str(path), **meta}
    return teacher, info


def check_teacher_fits(teacher: nn.Module, data: Data) -> None:
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


def teacher_view(teacher: nn.Module, data: Data) -> dict:
    """The teacher's logits and per-class accuracy on the validation data, computed once per build."""
    logits = predict(teacher, data.val.x).numpy()
    return {"logits": logits, "per_class_accuracy": per_class_accuracy(logits, data.val.y.numpy(), logits.shape[1])}


def label_with_teacher(data: Data, teacher: nn.Module | None, cache_dir: Path | None = None) -> Data:
    """An unlabeled folder's images labelled with the teacher's top-1 class (label-free distillation).

    Validation without labels is then agreement with the teacher; a labelled validation folder keeps
    its labels. The teacher's logits are cached in ``cache_dir`` by the content of teacher and images,
    so a rebuild or ``--resume`` skips the pass over the folder.

    Raises:
        DataError: no teacher (edgekd's default one would have nothing to learn from), or one that
            cannot run on the images.
    """
    if data.labels_from != "teacher":
        return data
    if teacher is None:
        raise DataError(f"data_dir: {data.name.removeprefix('folder:')} has no class sub-folders; label-free "
                        "distillation needs your trained teacher (teacher=..., --teacher FILE)")
    needs_val = bool((data.val.y < 0).any())
    logits = _teacher_logits(teacher, [data.train.x] + ([data.val.x] if needs_val else []), cache_dir)
    classes = logits[0].shape[1]
    if len(data.spec.labels) not in (0, classes):
        raise DataError(f"val_dir: {len(data.spec.labels)} class folders but the teacher outputs {classes} classes")
    spec = data.spec if data.spec.labels else data.spec.model_copy(update={"labels": tuple(map(str, range(classes)))})
    train = data.train.with_labels(torch.from_numpy(logits[0].argmax(1)))
    val = data.val.with_labels(torch.from_numpy(logits[1].argmax(1))) if needs_val else data.val
    log.info("labelled %d unlabeled images with the teacher's top-1 class (%d classes)", len(train), classes)
    return replace(data, train=train, val=val, spec=spec)


def _teacher_logits(teacher: nn.Module, inputs: list[torch.Tensor], cache_dir: Path | None) -> list[np.ndarray]:
    key = hashlib.sha256()
    for name, tensor in teacher.state_dict().items():
        key.update(name.encode())
        key.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for x in inputs:
        update_sha256(key, x)
    path = cache_dir / f"teacher-logits-{key.hexdigest()[:16]}.npz" if cache_dir is not None else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return [stored[f"part{i}"] for i in range(len(inputs))]
    try:
        with torch.no_grad():
            logits = [predict(teacher, x).numpy() for x in inputs]
    except Exception as exc:  # noqa: BLE001 - whatever the model raises, the cause is the input
        raise DataError(f"the teacher cannot run on the images of shape {tuple(inputs[0].shape[1:])} "
                        f"(C, H, W): {type(exc).__name__}: {exc}") from exc
    if logits[0].ndim != 2:
        raise DataError(f"the teacher must return logits of shape (N, classes), got {logits[0].shape}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.stem + ".partial.npz")  # a killed build leaves no truncated cache
        np.savez(partial, **{f"part{i}": a for i, a in enumerate(logits)})
        partial.replace(path)
    return logits
