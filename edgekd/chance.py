"""Warnings for a run whose teacher or student barely beats guessing.

A model at or below :func:`threshold` (twice chance, 1 / classes, and never more than an eighth of
the way from chance to 100 %, which matters for 2 or 3 classes) learned next to nothing;
a build still finishes, but says so on the terminal and in ``report["warnings"]`` (typed records
that the report writers render), naming the likely causes it can see from the report.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

CHANCE_FACTOR = 2.0  # a 20 % teacher on 10 classes is near chance
MAX_SHARE = 1 / 8  # ...but 2 classes at 90 % are not: at most chance + (1 - chance) / 8
MIN_PER_CLASS = 50  # fewer training images per class than this: "too little data"
MIN_EPOCHS = 10  # fewer epochs than this: "too few epochs"

CAUSES = {
    "too_little_data": "too little data ({per_class:.0f} training images per class)",
    "too_few_epochs": "too few epochs ({epochs})",
    "teacher_near_chance": "the teacher it learns from is itself near chance",
    "preprocessing": "inputs or labels not what the model expects (normalization, channel order, "
                     "image size, labels shuffled against the images)",
}


def threshold(classes: int) -> float:
    chance = 1 / classes
    return min(CHANCE_FACTOR * chance, chance + (1 - chance) * MAX_SHARE)


def near_chance(accuracy: float | None, classes: int) -> bool:
    return accuracy is not None and classes > 1 and accuracy <= threshold(classes) + 1e-12


def near_chance_warnings(classes: int, train: int, accuracies: dict, epochs: dict) -> list[dict]:
    """One ``{"kind": "near_chance", "model", "accuracy", "chance", "threshold", "causes", "message"}``
    per model of ``accuracies`` (``{"teacher": ..., "student": ...}``) at or below :func:`threshold`;
    ``epochs`` gives each model's training epochs where known, ``train`` the training images."""
    out = []
    for model in ("teacher", "student"):
        acc = accuracies.get(model)
        if not near_chance(acc, classes):
            continue
        causes = []
        if classes and train / classes < MIN_PER_CLASS:
            causes.append(("too_little_data", {"per_class": train / classes}))
        if epochs.get(model) is not None and epochs[model] < MIN_EPOCHS:
            causes.append(("too_few_epochs", {"epochs": epochs[model]}))
        if model == "student" and near_chance(accuracies.get("teacher"), classes):
            causes.append(("teacher_near_chance", {}))
        causes.append(("preprocessing", {}))
        texts = [CAUSES[code].format(**values) for code, values in causes]
        out.append({"kind": "near_chance", "model": model, "accuracy": acc, "chance": 1 / classes,
                    "threshold": threshold(classes), "causes": [code for code, _ in causes],
                    "message": f"{model} top-1 {acc * 100:.1f}% is near chance ({100 / classes:.1f}% for {classes} "
                               f"classes); likely: {'; '.join(texts)}"})
    return out


def log_chance_warnings(target: str, warnings: list[dict], models=("student",)) -> None:
    """Log the warnings of ``models`` (the teacher's is logged once per build, where it is prepared)."""
    for w in warnings:
        if w["model"] in models:
            log.warning("%s: %s", target, w["message"])
