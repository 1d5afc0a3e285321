"""The target's gate: a build passes only if its artifact is close enough to the teacher."""

from __future__ import annotations


def evaluate_gate(target, validation: dict) -> dict:
    """Check the target's accuracy (and agreement) gate; returns passed + human reasons."""
    gate = target.gate
    teacher_acc = validation["teacher"]["accuracy"]
    artifact = validation["artifact"]
    if artifact.get("not_run"):  # never "passed" for an artifact that did not run
        check = artifact.get("reference_check")
        if check is not None:  # a reference runtime's figures: shown beside the gate, never as a pass
            check["within_accuracy_gate"] = check["accuracy_drop_points"] <= gate.max_accuracy_drop
        return {"passed": False, "status": "not run here", "accuracy_drop_points": None,
                "max_accuracy_drop": gate.max_accuracy_drop, "min_agreement": gate.min_agreement,
                "reasons": [artifact["not_run"]]}
    drop = (teacher_acc - artifact["accuracy"]) * 100.0
    reasons, passed = [], True
    if drop > gate.max_accuracy_drop:
        passed = False
        reasons.append(f"artifact top-1 {artifact['accuracy'] * 100:.2f}% is {drop:.2f} points below the "
                       f"teacher's {teacher_acc * 100:.2f}% (allowed: {gate.max_accuracy_drop:.2f})")
    if gate.min_agreement is not None and artifact["agreement_teacher"] < gate.min_agreement:
        passed = False
        reasons.append(f"top-1 agreement with the teacher {artifact['agreement_teacher']:.4f} < "
                       f"{gate.min_agreement:.4f}")
    return {"passed": passed, "accuracy_drop_points": drop, "max_accuracy_drop": gate.max_accuracy_drop,
            "min_agreement": gate.min_agreement, "reasons": reasons}
