"""The validation records report.json is built from, where they need no runtime: a reference check judged
against the gate, and the record of an artifact that could not run here."""

from __future__ import annotations

from edgekd.schema.sections import Status

NOT_RUN_METRICS = ("accuracy", "agreement_teacher", "kl_teacher", "cosine_teacher")


def judged_check(check: dict, max_accuracy_drop: float) -> dict:
    """A reference check with ``within_accuracy_gate`` (a copy: the input is left as it was)."""
    if "within_accuracy_gate" in check:
        return check
    return {**check, "within_accuracy_gate": check["accuracy_drop_points"] <= max_accuracy_drop}


def not_run_measurements(artifact, reason: str) -> dict:
    """``validate()``'s ``artifact`` record of an artifact that could not run here: no figures, and why."""
    return {"path": str(artifact.path), "backend": artifact.backend, "precision": artifact.precision,
            "size_bytes": artifact.size_bytes, "status": Status.NOT_RUN.value, "not_run": reason,
            **dict.fromkeys(NOT_RUN_METRICS)}
