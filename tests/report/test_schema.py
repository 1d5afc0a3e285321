"""The typed report: report.json round-trips exactly, partial reports read back, statuses are typed."""

import json

import pytest

from edgekd.schema.record import LatencyRecord, Report
from edgekd.schema.sections import GateSection, Status, within_budget



def _legacy_not_run(make_report) -> dict:
    """A not-run report.json as build_all wrote it before the typed report (keys in its order)."""
    rep = make_report("ethos-u55", "ethosu", "int8")
    rep["gate"] = {"passed": None, "status": "not run here", "reasons": ["not run here: needs a board"],
                   "max_accuracy_drop": 1.0, "min_agreement": None}
    rep["artifact"].update(validated=False, latency_predicted_ms=0.4, latency_model={"kind": "vela"},
                           reference_check={"runtime": "tflite", "accuracy": 0.9, "accuracy_drop_points": 7.5})
    rep["warnings"] = [{"kind": "near_chance", "model": "student", "accuracy": 0.1, "chance": 0.1,
                        "threshold": 0.2, "causes": ["preprocessing"], "message": "m"}]
    rep["search"] = None
    rep["unknown_future_section"] = {"kept": [1, 2]}
    return rep


@pytest.mark.parametrize("validated", [True, False])
def test_report_round_trips_report_json_exactly_keys_values_and_order(make_report, validated):
    made = make_report("x86", "onnxruntime", "int8", accuracy=0.97, latency=0.05, kind="measured") if validated \
        else _legacy_not_run(make_report)
    data = json.loads(json.dumps(made))
    back = json.loads(json.dumps(Report.from_dict(data).to_dict()))
    assert back == data
    assert list(back) == list(data) and list(back["artifact"]) == list(data["artifact"])


def test_report_reads_typed_fields_from_a_not_run_report(make_report):
    rep = Report.from_dict(_legacy_not_run(make_report))
    assert rep.gate.passed is None and rep.gate.status is Status.NOT_RUN
    assert rep.artifact.accuracy is None and not rep.artifact.ran and rep.artifact.validated is False
    prediction = rep.artifact.prediction
    assert prediction.latency_predicted_ms == 0.4 and prediction.latency_model["kind"] == "vela"
    assert rep.artifact.reference_check["accuracy"] == 0.9
    assert [(w.model, w.causes) for w in rep.near_chance] == [("student", ["preprocessing"])]
    assert rep.search is None and rep.extra["unknown_future_section"] == {"kept": [1, 2]}
    assert isinstance(rep.latency, LatencyRecord) and rep.latency.kind == "none" and rep.latency.ms is None


def test_gate_status_follows_passed_and_is_written_only_when_it_says_more():
    assert GateSection(passed=True).status is Status.PASSED and "status" not in GateSection(passed=True).to_dict()
    assert GateSection(passed=False).status is Status.FAILED
    not_run = GateSection.not_run("not run here: no NPU", 1.0, None)
    assert not_run.passed is None and not_run.status is Status.NOT_RUN
    assert not_run.to_dict() == {"passed": None, "status": "not run here", "reasons": ["not run here: no NPU"],
                                 "max_accuracy_drop": 1.0, "min_agreement": None}


def test_report_from_an_empty_or_partial_dict_has_empty_sections():
    rep = Report.from_dict({"gate": {"passed": True}})
    assert rep.teacher.accuracy is None and rep.artifact.details == {} and rep.run is None
    assert rep.status is Status.PASSED and Report.from_dict(None).status is None


@pytest.mark.parametrize("ms, budget, expected", [(0.4, 0.5, True), (0.6, 0.5, False), (0.5, 0.5, True),
                                                  (None, 0.5, None), (0.4, None, None)])
def test_within_budget_is_none_without_a_budget_or_a_figure(ms, budget, expected):
    assert within_budget(ms, budget) is expected


def test_status_serializes_as_its_value():
    assert json.dumps({"s": Status.NOT_RUN}) == '{"s": "not run here"}'
    assert Status("not built here") is Status.NOT_BUILT and str(Status.ERROR) == "error"
