"""The target's gate on a validation: pure, typed, and undecided (never passed) for an artifact not run here."""

import copy

import pytest

from edgekd.schema.sections import Status
from edgekd.targets import load_target
from edgekd.validate.gates import GateVerdict, evaluate_gate, gate_of

TARGET = load_target("x86-cpu-onnxruntime")  # max_accuracy_drop 1.0 points


def _validation(artifact_accuracy, not_run=None):
    art = {"accuracy": artifact_accuracy, "agreement_teacher": 0.99 if artifact_accuracy is not None else None}
    if not_run:
        art.update(not_run=not_run, reference_check={"accuracy": 0.9, "accuracy_drop_points": 7.5})
    return {"samples": 200, "teacher": {"accuracy": 0.975}, "artifact": art}


@pytest.mark.parametrize("accuracy, status", [(0.97, Status.PASSED), (0.95, Status.FAILED)])
def test_gate_passes_within_the_allowed_accuracy_drop(accuracy, status):
    gate = gate_of(TARGET, _validation(accuracy))
    assert gate.status is status and gate.passed is (status is Status.PASSED)
    assert gate.accuracy_drop_points == pytest.approx((0.975 - accuracy) * 100)
    assert bool(gate.reasons) is (status is Status.FAILED)


def test_gate_of_an_artifact_not_run_here_is_undecided_and_changes_nothing():
    validation = _validation(None, not_run="not run here: no device")
    before = copy.deepcopy(validation)
    gate = evaluate_gate(TARGET, validation)
    assert gate["passed"] is None and gate["status"] == Status.NOT_RUN
    assert gate["reasons"] == ["not run here: no device"] and "accuracy_drop_points" not in gate
    assert validation == before  # the reference check is judged by validate(), not by the gate
    verdict = GateVerdict.from_validation(TARGET, validation)
    assert verdict.passed is None and verdict.status == Status.NOT_RUN and verdict.agreement is None
