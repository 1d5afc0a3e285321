"""Accuracy gate recovery (sensitive layers kept in float) and the speed gate."""

from __future__ import annotations

import onnx

import edgekd
from edgekd.quant.qdq import qdq_summary
from edgekd.targets import load_target
from edgekd.validate import evaluate_gate
from edgekd.validate.sensitivity import can_recover, layer_sensitivity, recover_accuracy
from edgekd.validate.speed import speed_gate


def _strict(target: str):
    """The same target with a gate no int8 build can meet (agreement 1.0 and no accuracy drop at all)."""
    t = load_target(target)
    gate = t.gate.model_copy(update={"max_accuracy_drop": 0.0, "min_agreement": 1.0})
    return t.model_copy(update={"gate": gate})


def test_sensitivity_ranks_every_quantized_layer(students, digits, tmp_path):
    train, val, _ = digits
    artifact = edgekd.compile(students["residual"], "x86-cpu-onnxruntime", (train.x.numpy(), train.y.numpy()),
                              tmp_path)
    ranking = layer_sensitivity(artifact, train.x.numpy()[:64], val.x.numpy()[:128])
    assert {r["layer"] for r in ranking} == set(artifact.details["quantized_layers"])
    assert all(a["kl"] >= b["kl"] for a, b in zip(ranking, ranking[1:]))


def test_missed_gate_keeps_sensitive_layers_float_and_reports_why(students, digits, tmp_path):
    train, val, _ = digits
    model, target = students["inverted_residual"], _strict("x86-cpu-onnxruntime")
    calib = (train.x.numpy(), train.y.numpy())
    artifact = edgekd.compile(model, target, calib, tmp_path)
    validation = edgekd.validate(artifact, model, val, measure_latency=False)
    gate = evaluate_gate(target, validation)
    if gate["passed"]:  # int8 matched fp32 exactly on every sample: nothing to recover
        return
    assert can_recover(artifact, target)
    artifact, validation, record = recover_accuracy(model, target, calib, val, model, tmp_path, artifact, gate)
    kept = [k["layer"] for k in record["kept_float"]]
    assert kept and all("sensitivity" in k["reason"] for k in record["kept_float"])
    float_in_graph = {k["layer"] for k in qdq_summary(artifact.path)["kept_float"]}
    assert set(kept) <= float_in_graph  # really float in the rebuilt model
    assert record["attempts"][-1]["kept_float"] == kept
    assert edgekd.load(artifact.path)(val.x.numpy()[:4]).shape == (4, 10)


def test_speed_gate_ships_the_faster_and_says_so(students, digits, tmp_path):
    train, _, _ = digits
    artifact = edgekd.compile(students["residual"], "x86-cpu-onnxruntime", (train.x.numpy(), train.y.numpy()),
                              tmp_path)
    shipped, record = speed_gate(artifact, load_target("x86-cpu-onnxruntime"))
    faster = "int8" if record["p50_ms"]["int8"] < record["p50_ms"]["fp32"] else "fp32"
    assert record["shipped"] == faster == shipped.precision
    assert faster in record["reason"]
    assert edgekd.backends.base.Artifact.read(shipped.folder).precision == faster
    assert onnx.load(str(shipped.path))
