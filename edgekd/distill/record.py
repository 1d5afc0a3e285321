"""What a distillation leaves in its output folder: student.json (how to rebuild the student) and
summary.json (accuracies, loss, QAT), written alike by ``edgekd.distill(out_dir=...)`` and ``edgekd distill``."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edgekd._io import write_json
from edgekd.distill.trainer import evaluate
from edgekd.schema.student import arch_of, card_of

ARCH_SCHEMA = "edgekd.arch/1"


def arch_card(model: nn.Module, input_shape, num_classes: int) -> dict:
    """student.json: rebuild with the registry (``create_student``), then ``load_state_dict``."""
    arch = {k: v for k, v in arch_of(model, {"name": type(model).__name__}).items()
            if k != "qat"}
    qat = card_of(model).qat
    return {"schema": ARCH_SCHEMA, **arch, "input_shape": list(input_shape), "num_classes": int(num_classes),
            "qat_format": qat["format"] if qat else None}


def num_outputs(model: nn.Module, input_shape) -> int:
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, *input_shape))
    model.train(was_training)
    return int(out.shape[1])


def summary(model: nn.Module, teacher: nn.Module | None, train, val, loss, *, seed: int, epochs: int,
            resumed_from_epoch: int, seconds: float | None = None, device: str = "cpu") -> dict:
    """summary.json's common part: sizes, val top-1 of teacher and student, last loss terms, QAT record."""
    history = getattr(model, "edgekd_history", None) or [{}]
    last = history[-1]
    has_val = val is not None and len(val) and bool((val.y >= 0).all())
    return {"train_size": len(train), "val_size": len(val) if val is not None else 0, "seed": seed,
            "epochs": epochs, "seconds": seconds, "device": device,
            "teacher": {"val_accuracy": evaluate(teacher, val) if teacher is not None and has_val else None},
            "student": {"arch": arch_card(model, train.input_shape, num_outputs(model, train.input_shape)),
                        "val_accuracy": evaluate(model, val) if has_val else None},
            "loss": {"name": getattr(type(loss), "registry_name", type(loss).__name__), "config": loss.config(),
                     "terms": {k: v for k, v in last.items() if k not in ("epoch", "phase", "val_accuracy")}},
            "qat": card_of(model).qat, "resumed_from_epoch": int(resumed_from_epoch)}


def write(out: Path, summary_: dict) -> None:
    write_json(out / "student.json", summary_["student"]["arch"])
    write_json(out / "summary.json", summary_)
