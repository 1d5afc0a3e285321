"""One builder on every path: the same typed record for a validated and a not-run artifact; pure sections."""

import copy
from types import SimpleNamespace

import pytest
import torch

from edgekd.capability import Capability, latency_record
from edgekd.distill import TrainConfig
from edgekd.distill.losses import KD
from edgekd.hw.model import report_prediction
from edgekd.report.builder import assemble, finish, run_section, validation_pieces
from edgekd.report.versus import baseline_sections
from edgekd.schema.record import Report
from edgekd.schema.sections import Status
from edgekd.schema.student import set_card
from edgekd.targets import load_target

TARGET = load_target("x86-cpu-onnxruntime")
LABELS = [str(c) for c in range(10)]
CHECK = {"runtime": "reference", "samples": 100, "accuracy": 0.9, "agreement_teacher": 0.91,
         "accuracy_drop_points": 7.0}


def _pieces(**extra) -> dict:
    data = SimpleNamespace(name="digits", train=_Sized(1437, (1, 8, 8)), val=[0] * 360,
                           spec=SimpleNamespace(labels=LABELS))
    student = torch.nn.Linear(4, 10)
    set_card(student, arch={"name": "resnet", "widths": [8, 16, 32]})
    artifact = SimpleNamespace(path="/b/x86/model.onnx", backend="onnxruntime", precision="int8", size_bytes=1000,
                               files={"model": "model.onnx"}, sha256={"model.onnx": "ab"}, static_batch=None,
                               details={"kept_float": []})
    return dict(target=TARGET, data=data, teacher_info={"arch": "TeacherCNN", "source": "user", "trained_now": False,
                                                        "params": 140_000},
                student=student, artifact=artifact, loss=KD(), config=TrainConfig(epochs=3), history=[],
                seconds=1.0, environment_facts={"cpu": "test"}, **extra)


class _Sized(list):
    def __init__(self, n, shape):
        super().__init__([0] * n)
        self.input_shape = shape


def _validation(accuracy: float, p50: float | None = 0.2) -> dict:
    art = {"path": "/b/x86/model.onnx", "backend": "onnxruntime", "precision": "int8", "size_bytes": 1000,
           "accuracy": accuracy, "agreement_teacher": 0.99, "kl_teacher": 0.01, "cosine_teacher": 0.99}
    if p50 is not None:
        art["latency_ms"] = {"p50": p50, "p90": p50 * 1.1, "runtime": "onnxruntime", "threads": 1, "runs": 10}
    return {"samples": 360, "teacher": {"accuracy": 0.975}, "student": {"accuracy": 0.97}, "artifact": art}


def _not_run_validation() -> dict:
    """validate()'s record of an artifact whose runtime is absent (the single-target build's path)."""
    art = {"path": "/b/x86/model.onnx", "backend": "onnxruntime", "precision": "int8", "size_bytes": 1000,
           "status": "not run here", "not_run": "not run here: no device", "accuracy": None,
           "agreement_teacher": None, "kl_teacher": None, "cosine_teacher": None, "reference_check": dict(CHECK)}
    return {"samples": 360, "teacher": {"accuracy": 0.975}, "student": {"accuracy": 0.97}, "artifact": art}


def test_a_not_run_artifact_gets_the_same_undecided_gate_on_both_paths():
    from_validate = assemble(**_pieces(), **validation_pieces(_not_run_validation()))
    from_matrix = assemble(**_pieces(), teacher_metrics={"accuracy": 0.975}, student_metrics={"accuracy": 0.97},
                           not_run="not run here: no device", reference_check=dict(CHECK))
    for report in (from_validate, from_matrix):
        assert report.gate.passed is None and report.gate.status is Status.NOT_RUN
        assert report.gate.reasons == ["not run here: no device"] and report.gate.accuracy_drop_points is None
        assert report.artifact.validated is False and not report.artifact.ran
        assert report.artifact.within_budget is None
        assert report.artifact.reference_check["within_accuracy_gate"] is False  # 7 points > 1 allowed
        written = report.to_dict()
        assert written["gate"]["passed"] is None and written["gate"]["status"] == "not run here"
        assert "accuracy" not in written["artifact"]
    assert _sections(from_validate) == _sections(from_matrix)


def _sections(report: Report) -> dict:
    out = report.to_dict()
    out["artifact"].pop("status", None), out["artifact"].pop("not_run", None)  # validate()'s own record of the not-run
    return {k: out[k] for k in ("gate", "artifact", "distillation")}


@pytest.mark.parametrize("p50, within", [(0.2, True), (0.9, False), (None, None)])
def test_a_validated_artifact_is_judged_against_the_budget_on_its_measured_p50(p50, within):
    gate = {"passed": True, "accuracy_drop_points": 0.5, "max_accuracy_drop": 1.0, "min_agreement": None,
            "reasons": []}
    report = assemble(**_pieces(), gate=gate, **validation_pieces(_validation(0.97, p50)))
    assert TARGET.latency.budget_ms is not None
    assert report.artifact.within_budget is within and report.artifact.ran
    assert report.gate.status is Status.PASSED and "status" not in report.to_dict()["gate"]
    assert report.artifact.path == "model.onnx" and report.student.params == 50


def test_assemble_needs_a_gate_or_a_not_run_reason():
    with pytest.raises(ValueError, match="gate"):
        assemble(**_pieces(), **validation_pieces(_validation(0.97)))


def test_baseline_sections_match_the_baseline_module_and_leave_the_report_alone():
    gate = {"passed": True, "accuracy_drop_points": 0.5, "max_accuracy_drop": 1.0, "min_agreement": None,
            "reasons": []}
    report = assemble(**_pieces(), gate=gate, **validation_pieces(_validation(0.97, 0.2)))
    teacher = {"target": TARGET.name, "backend": "onnxruntime", "params": 140_000, "latency_budget_ms": 0.5,
               "path": "teacher/x86/model.onnx", "precision": "int8", "size_bytes": 4000, "status": "run here",
               "reason": "", "accuracy": 0.975, "passes_accuracy_gate": True, "within_budget": True,
               "latency_p50_ms": 0.3, "latency_kind": "measured"}
    latency = {"kind": "measured", "ms": 0.2}
    before = copy.deepcopy(report.to_dict())
    sections = baseline_sections(report, teacher, latency, "auto")
    assert report.to_dict() == before
    t, versus, ship = sections
    assert t.to_dict() == teacher  # the compiled teacher's record, as compile_teacher wrote it
    assert versus.speedup_vs_compiled_teacher == pytest.approx(0.3 / 0.2) and versus.speedup_basis == "measured"
    assert versus.accuracy_delta_points == pytest.approx((report.artifact.accuracy - 0.975) * 100)
    assert versus.size_ratio == pytest.approx(4000 / report.artifact.size_bytes)
    assert versus.student_faster is True and versus.teacher_fits is True
    assert (ship.requested, ship.choice) == ("auto", "student")
    assert ship.artifact == f"{TARGET.name}/{report.artifact.path}"


def test_latency_record_predicts_without_changing_the_report():
    report = assemble(**_pieces(), teacher_metrics={"accuracy": 0.975}, student_metrics={"accuracy": 0.97},
                      not_run="not run here: no device").to_dict()
    assert "latency_model" not in report["artifact"]
    before = copy.deepcopy(report)
    cap = Capability(TARGET.name, "onnxruntime", True, "", False, "no device", False, "not measured on the device")
    record = latency_record(report, cap, TARGET)
    assert report == before
    assert record["kind"] in ("predicted", "none") and record["budget_ms"] == TARGET.latency.budget_ms
    run = run_section(Status.NOT_RUN, "not run here: no device", cap, record, {"compile_and_validate": 1.0})
    assert run.status is Status.NOT_RUN and run.latency.kind == record["kind"]
    assert run.to_dict()["latency"] == record


def test_assemble_records_near_chance_warnings_as_typed_records():
    gate = {"passed": False, "accuracy_drop_points": 80.0, "max_accuracy_drop": 1.0, "min_agreement": None,
            "reasons": ["far below"]}
    validation = _validation(0.1)
    validation["student"] = {"accuracy": 0.1}
    report = assemble(**_pieces(), gate=gate, **validation_pieces(validation))
    assert [(w.model, w.causes[-1]) for w in report.near_chance] == [("student", "preprocessing")]
    assert "too_few_epochs" in report.near_chance[0].causes  # 3 epochs in the config
    assert report.gate.status is Status.FAILED


TEACHER_RECORD = {"target": TARGET.name, "backend": "onnxruntime", "params": 140_000, "latency_budget_ms": 0.5,
                  "path": "teacher/x86/model.onnx", "precision": "int8", "size_bytes": 4000, "status": "run here",
                  "reason": "", "accuracy": 0.975, "passes_accuracy_gate": True, "within_budget": True,
                  "latency_p50_ms": 0.3, "latency_kind": "measured"}


@pytest.mark.parametrize("validated", [True, False])
def test_finish_gives_the_report_the_stages_used_to_patch_together(validated):
    gate = {"passed": True, "accuracy_drop_points": 0.5, "max_accuracy_drop": 1.0, "min_agreement": None,
            "reasons": []}
    if validated:
        built = assemble(**_pieces(), gate=gate, **validation_pieces(_validation(0.97, 0.2)))
        cap = Capability(TARGET.name, "onnxruntime", True, "", True, "", True, "")
    else:
        built = assemble(**_pieces(), teacher_metrics={"accuracy": 0.975, "per_class_accuracy": [1.0] * 10},
                         student_metrics={"accuracy": 0.97}, not_run="not run here: no device")
        cap = Capability(TARGET.name, "onnxruntime", True, "", False, "no device", False, "not measured")
    status = Status.PASSED if validated else Status.NOT_RUN
    seconds = {"compile_and_validate": 1.0}
    # the old way: a dict patched by the prediction, the run record and the baseline, in that order
    legacy = built.to_dict()
    legacy["artifact"].update(report_prediction(legacy, TARGET))
    legacy["run"] = {"status": status, "reason": "r", "capability": cap.__dict__, "shared_distillation": "fp32",
                     "latency": latency_record(legacy, cap, TARGET), "seconds": seconds}
    typed = Report.from_dict(legacy)
    sections = baseline_sections(typed, dict(TEACHER_RECORD), typed.latency, "auto")  # checked on its own above
    legacy["teacher_artifact"], legacy["versus_teacher"], legacy["ship"] = (x.to_dict() for x in sections)
    before = built.to_dict()
    done = finish(built, target=TARGET, capability=cap, status=status, reason="r", seconds=seconds,
                  shared_distillation="fp32", teacher_artifact=dict(TEACHER_RECORD), ship="auto")
    assert built.to_dict() == before  # finish returns a new record
    assert done.to_dict() == legacy and list(done.to_dict()) == list(legacy)
    assert done.status is status and done.run.latency.kind == legacy["run"]["latency"]["kind"]
    assert (done.run.latency.kind == "measured") is validated
