"""Agreement metrics between an artifact's logits and a reference's."""

from __future__ import annotations

import numpy as np


def log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of samples where both give the same top-1 class."""
    return float((a.argmax(1) == b.argmax(1)).mean())


def mean_kl(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Mean KL(softmax(reference) ‖ softmax(candidate)) in nats."""
    log_p, log_q = log_softmax(reference), log_softmax(candidate)
    return float((np.exp(log_p) * (log_p - log_q)).sum(axis=1).mean())


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12
    return float((num / den).mean())


def per_class_accuracy(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> list[float | None]:
    pred = logits.argmax(1)
    return [float((pred[labels == c] == c).mean()) if (labels == c).any() else None for c in range(num_classes)]


def compare(candidate: np.ndarray, labels: np.ndarray, teacher: np.ndarray, student: np.ndarray | None) -> dict:
    """Accuracy and closeness of ``candidate`` logits to the teacher's (and the fp32 student's)."""
    out = {
        "accuracy": accuracy(candidate, labels),
        "agreement_teacher": agreement(candidate, teacher),
        "kl_teacher": mean_kl(teacher, candidate),
        "cosine_teacher": mean_cosine(candidate, teacher),
        "per_class_accuracy": per_class_accuracy(candidate, labels, teacher.shape[1]),
    }
    if student is not None:
        out["agreement_student"] = agreement(candidate, student)
        out["max_abs_diff_student"] = float(np.abs(candidate - student).max())
    return out
