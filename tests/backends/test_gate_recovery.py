"""Accuracy gate recovery (sensitive layers kept in float) and the speed gate."""

from __future__ import annotations

import onnx

import edgekd
from edgekd.hw.base import fp32_is_faster
from edgekd.quant.qdq import qdq_summary
from edgekd.targets import load_target
from edgekd.validate import evaluate_gate
from edgekd.validate.sensitivity import can_recover, layer_sensitivity, recover_accuracy
from edgekd.validate.speed import faster_precision, speed_gate


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
    target = load_target("x86-cpu-onnxruntime")
    timed = target.model_copy(update={"gate": target.gate.model_copy(update={"speed_gate": True})})  # as OpenVINO's
    shipped, record = speed_gate(artifact, timed)
    faster = "fp32" if fp32_is_faster(record["p50_ms"]["int8"], record["p50_ms"]["fp32"]) else "int8"
    assert record["shipped"] == faster == shipped.precision and record["reason"].startswith(faster)
    kept = edgekd.backends.base.Artifact.read(shipped.folder).details["speed_gate"]
    assert kept["shipped"] == faster and "p50_ms" not in kept  # timings differ run to run: not in artifact.json
    assert edgekd.backends.base.Artifact.read(shipped.folder).precision == faster
    assert onnx.load(str(shipped.path))


def test_the_teacher_row_is_the_faster_build_and_its_folder_keeps_int8(students, digits, tmp_path):
    train, _, _ = digits
    artifact = edgekd.compile(students["residual"], "x86-cpu-onnxruntime", (train.x.numpy(), train.y.numpy()),
                              tmp_path)
    written = (artifact.folder / "artifact.json").read_bytes()
    row, record = faster_precision(artifact, load_target("x86-cpu-onnxruntime"))
    faster = "fp32" if fp32_is_faster(record["p50_ms"]["int8"], record["p50_ms"]["fp32"]) else "int8"
    assert record["shipped"] == faster == row.precision
    assert row.path == artifact.folder / artifact.files["model" if faster == "int8" else "fp32"]
    assert (artifact.folder / "artifact.json").read_bytes() == written  # a near tie cannot change a rebuild's files
    reread = edgekd.backends.base.Artifact.read(row.path)  # the row's model file read back: its own precision
    assert reread.precision == faster
    assert edgekd.load(row.path)(train.x.numpy()[:2]).shape == (2, 10)  # hashed: loads verified


def _own_profile(tmp_path, monkeypatch, slower: str):
    """This CPU's own profile of the x86 target (the committed one, relabelled), ``slower`` made 100 ms slower."""
    import json

    import edgekd.hw.model as model_module
    from edgekd.hw.host import host_profile_name

    here = model_module.cpu_model()
    monkeypatch.delenv("EDGEKD_TARGETS_DIR", raising=False)  # read the committed profile, not an earlier copy
    data = json.loads(model_module.profile_path("x86-cpu-onnxruntime").read_text())
    data["provenance"]["machine"]["cpu"] = here
    data["precisions"][slower]["overhead"]["base_ms"] += 100.0
    (tmp_path / "profiles").mkdir(parents=True)
    (tmp_path / "profiles" / host_profile_name("x86-cpu-onnxruntime", here)).write_text(json.dumps(data))
    monkeypatch.setenv("EDGEKD_TARGETS_DIR", str(tmp_path))


def test_a_profile_speed_gate_follows_this_cpus_profile_and_times_where_it_has_none(
        students, digits, tmp_path, monkeypatch):
    import warnings

    from edgekd.schema.student import arch_of

    train, _, _ = digits
    target = load_target("x86-cpu-onnxruntime")
    assert target.gate.speed_gate == "profile"
    model, arch = students["residual"], arch_of(students["residual"])
    _own_profile(tmp_path / "targets", monkeypatch, slower="int8")
    for name, slower, shipped_precision in (("a", "int8", "fp32"), ("b", "fp32", "int8")):
        if slower == "fp32":
            _own_profile(tmp_path / "targets2", monkeypatch, slower="fp32")
        artifact = edgekd.compile(model, target, (train.x.numpy(), train.y.numpy()), tmp_path / name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 8×8 digits lie below the fitted sizes: extrapolated, and said so
            shipped, record = speed_gate(artifact, target, arch=arch)
        assert record["shipped"] == shipped.precision == shipped_precision
        assert record["decided_by"].startswith("predicted by")
        assert record["p50_ms"][slower] > 5 * record["p50_ms"][shipped_precision]  # the made-up 100 ms shows
    artifact = edgekd.compile(model, target, (train.x.numpy(), train.y.numpy()), tmp_path / "c")
    shipped, record = speed_gate(artifact, target, arch=None)  # a teacher's own module: no profile predicts it
    assert shipped.precision == "int8" and record["applied"] is False  # kept as compiled, untimed
    monkeypatch.delenv("EDGEKD_TARGETS_DIR")
    monkeypatch.setattr("edgekd.hw.model.cpu_model", lambda: "A CPU without a profile of its own")
    artifact = edgekd.compile(model, target, (train.x.numpy(), train.y.numpy()), tmp_path / "d")
    _, record = speed_gate(artifact, target, arch=arch)
    assert record["decided_by"].startswith("measured here") and record["p50_ms"]["int8"] < 5
