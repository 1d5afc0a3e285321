"""Latency models: trees as JSON, recovery of synthetic timings, provenance, FLOPs fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekd.errors import ConfigError
from edgekd.hw import trees
from edgekd.hw.features import FEATURES, arch_key, blocks_of
from edgekd.hw.fit import fit_profile, fit_table
from edgekd.hw.model import FlopsLatencyModel, ProfileLatencyModel, latency_model, profile_path
from edgekd.hw.sampling import sample_archs
from hw_helpers import write_target

SHAPE = (1, 28, 28)


def test_trees_json_predicts_like_sklearn():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    y = np.sin(x[:, 0]) + x[:, 1] ** 2 + 0.1 * rng.normal(size=300)
    model = trees.fit_gbrt(x, y, n_estimators=50)
    blob = json.loads(json.dumps(trees.to_json(model, list("abcde"))))
    test = rng.normal(size=(100, 5))
    np.testing.assert_allclose(trees.predict(blob, test), model.predict(test), rtol=1e-5, atol=1e-5)


def _synthetic_ms(block) -> float:
    """A made-up but structured latency law: per-kind cost plus compute and memory terms."""
    base = {"stem": 0.004, "basic": 0.006, "inverted": 0.008, "head": 0.003, "classifier": 0.005, "io": 0.007}
    return base[block.kind] + block.macs * 4e-9 + (block.cin * block.h * block.w) * 2e-7


def _records(archs, kernels_per_block=2):
    recs = []
    for arch in archs:
        blocks = blocks_of(arch, SHAPE, 10, "int8")
        per = {b.path: {"ms": _synthetic_ms(b), "ops": ["K"] * kernels_per_block} for b in blocks}
        total = sum(v["ms"] for v in per.values()) + 0.02 + 0.001 * kernels_per_block * len(blocks)
        recs.append({"arch": arch, "input_shape": list(SHAPE), "precision": "int8", "total_ms": total,
                     "spread": 0.0, "runs": 150, "blocks": per})
    return recs


def _truth(arch, kernels_per_block=2):
    blocks = blocks_of(arch, SHAPE, 10, "int8")
    return sum(_synthetic_ms(b) for b in blocks) + 0.02 + 0.001 * kernels_per_block * len(blocks)


def test_fit_recovers_synthetic_timings():
    fitting = sample_archs(20, seed=1)
    held_out = sample_archs(10, seed=2, exclude={arch_key(a) for a in fitting})
    table = fit_table(_records(fitting), "int8")
    model = ProfileLatencyModel(table, "int8", {"file": "synthetic"})
    seen = [abs(model.predict_ms(a, SHAPE) / _truth(a) - 1) for a in fitting]
    unseen = [abs(model.predict_ms(a, SHAPE) / _truth(a) - 1) for a in held_out]
    assert max(seen) < 0.01  # every block of these is in the lookup table
    assert np.median(unseen) < 0.05 and max(unseen) < 0.15  # held-out blocks go through the trees
    assert table["kernels"] and table["overhead"]["scale"] == pytest.approx(1.0, abs=0.05)


def test_fit_needs_enough_networks():
    with pytest.raises(ConfigError, match="at least 3"):
        fit_table(_records(sample_archs(1, seed=3)), "int8")


def test_fit_profile_writes_provenance_and_loads(tmp_path):
    out = fit_profile("x86-cpu-onnxruntime", precisions=("fp32",), networks_per_space=2, input_shapes=((1, 12, 12),),
                      out=tmp_path / "p.json", runs=50, rounds=2, time_limit_s=60)
    data = json.loads(out.read_text())
    prov = data["provenance"]
    assert prov["machine"]["cpu"] and prov["versions"]["onnxruntime"] and prov["date"].startswith("20")
    assert prov["measurements"]["networks"] == 4 and prov["measurements"]["timed_runs"] >= 4 * 50
    assert prov["threads"] == 1 and len(data["fitted_networks"]) == 4
    table = data["precisions"]["fp32"]
    assert set(table) >= {"lut", "regressor", "kernels", "overhead", "fusion"}
    assert table["regressor"]["features"] == list(FEATURES)
    model = ProfileLatencyModel.load(out, "fp32")
    assert model.kind == "profile" and model.source["date"] == prov["date"]
    assert 0 < model.predict_ms({"name": "resnet", "depths": (1, 1, 1), "widths": (8, 8, 8)}, (1, 12, 12)) < 50


def test_flops_fallback_warns_for_target_without_profile(tmp_path):
    target = write_target(tmp_path, "faraway-npu", backend="qnn", device="npu")
    with pytest.warns(UserWarning, match="no latency model"):
        model = latency_model(target)
    assert isinstance(model, FlopsLatencyModel) and model.kind == "flops"
    arch = {"name": "resnet", "depths": (1, 1, 1), "widths": (16, 32, 64)}
    macs = sum(b.macs for b in blocks_of(arch, SHAPE))
    assert model.predict_ms(arch, SHAPE) == pytest.approx(macs / 1e6)


def test_fit_profile_refuses_targets_not_on_this_machine(tmp_path):
    target = write_target(tmp_path, "htp-emulated", backend="qnn", device="npu")
    with pytest.raises(ConfigError, match="emulator"):
        fit_profile(target, out=tmp_path / "x.json")


def test_committed_profile_is_used_and_ranks_sizes():
    if not profile_path("x86-cpu-onnxruntime").exists():
        pytest.skip("no fitted profile committed yet: edgekd profile --target x86-cpu-onnxruntime --fit")
    model = latency_model("x86-cpu-onnxruntime")
    assert model.kind == "profile" and model.source["measurements"]["networks"] > 0
    small = model.predict_ms({"name": "resnet", "depths": (1, 1, 1), "widths": (8, 16, 32)}, SHAPE)
    big = model.predict_ms({"name": "resnet", "depths": (3, 3, 3), "widths": (32, 64, 128)}, SHAPE)
    assert 0.005 < small < big < 100


def _report(arch, p50=0.2):
    return {"student": {"arch": arch}, "dataset": {"input_shape": [1, 28, 28], "classes": list(range(10))},
            "artifact": {"latency_ms": {"p50": p50}}}


def test_report_prediction_without_latency_model_keeps_ms_empty(tmp_path):
    from edgekd.hw.model import report_prediction

    target = write_target(tmp_path, "faraway-gpu", backend="tensorrt", device="gpu")
    out = report_prediction(_report({"name": "resnet", "depths": (1, 1, 1), "widths": (16, 32, 64)}), target)
    assert out["latency_predicted_ms"] is None and out["latency_model"]["kind"] == "flops"
    assert out["flops_proxy_mmac"] > 0 and any("no latency model" in w for w in out["latency_model"]["warnings"])
    odd = report_prediction(_report({"name": "TeacherCNN"}), target)
    assert odd["latency_predicted_ms"] is None and "not a registry" in odd["latency_model"]["reason"]


def test_report_prediction_compares_profile_with_measured():
    from edgekd.hw.model import report_prediction

    if not profile_path("x86-cpu-onnxruntime").exists():
        pytest.skip("no fitted profile committed yet: edgekd profile --target x86-cpu-onnxruntime --fit")
    out = report_prediction(_report({"name": "resnet", "depths": (1, 1, 1), "widths": (16, 32, 64)}, 0.2),
                            "x86-cpu-onnxruntime")
    pred = out["latency_predicted_ms"]
    assert out["latency_model"]["kind"] == "profile" and pred > 0 and out["latency_model"]["extrapolated"] is False
    assert out["latency_model"]["error_vs_measured_pct"] == pytest.approx(100 * (pred - 0.2) / 0.2, abs=0.01)
    assert out["latency_model"]["within_10pct"] == (abs(pred - 0.2) <= 0.02)


def _committed_model(precision="fp32"):
    if not profile_path("x86-cpu-onnxruntime").exists():
        pytest.skip("no fitted profile committed yet: edgekd profile --target x86-cpu-onnxruntime --fit")
    return latency_model("x86-cpu-onnxruntime", precision)


def test_the_committed_profile_is_fitted_at_real_resolutions_and_extrapolates_only_beyond_them():
    model = _committed_model()
    assert {(1, 28, 28), (3, 32, 32), (3, 64, 64), (3, 96, 96), (3, 224, 224)} <= set(model.fitted_shapes)
    arch = {"name": "resnet", "depths": (1, 1, 1), "widths": (16, 32, 64)}
    unfitted = (3, 448, 448)
    anchor = model.anchor_shape(unfitted)
    assert anchor == (3, 224, 224) and model.covers(anchor) and not model.covers(unfitted)
    with pytest.warns(UserWarning, match="extrapolated"):
        beyond = model.predict_ms(arch, unfitted)
    macs = [sum(b.macs for b in blocks_of(arch, s)) for s in (anchor, unfitted)]
    assert beyond == pytest.approx(model.predict_ms(arch, anchor) * macs[1] / macs[0], rel=1e-9)


def test_a_block_larger_than_any_fitted_one_is_held_above_the_best_measured_throughput():
    model = _committed_model()
    # a full-resolution stem at 224 px: stage-1 blocks at 224x224, never fitted (students scale their stem)
    arch = {"name": "resnet", "depths": (1, 1, 1), "widths": (16, 32, 64), "stem_stride": 1}
    floor = model.table["floor_ms_per_mmac"]
    for block, ms, source in model.block_ms(blocks_of(arch, (3, 224, 224), 10, "fp32")):
        if source == "regression" and block.kind in floor:
            assert ms >= floor[block.kind] * block.macs / 1e6 * (1 - 1e-9)
    # the trees alone said 2.1 ms here for a network measured at 7.1 ms
    assert model.predict_ms(arch, (3, 224, 224)) > 5.0


def test_profile_from_another_machine_warns_naming_it(monkeypatch):
    import edgekd.hw.model as model_module

    _committed_model()
    monkeypatch.setattr(model_module, "cpu_model", lambda: "Some Other CPU 9000")
    with pytest.warns(UserWarning, match="fitted on 'Intel"):
        latency_model("x86-cpu-onnxruntime")
