"""Whole-network latency profiles (ExecuTorch): attribution of totals to blocks by the prior, the fit,
and the warning when the profile's machine is not the device's ISA."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest

from edgekd.hw.features import KINDS, blocks_of
from edgekd.hw.fit import fit_profile
from edgekd.hw.fit_whole import PRIOR_TARGET, attribute_by_prior
from edgekd.hw.model import ProfileLatencyModel, latency_model, profile_path
from edgekd.hw.sampling import sample_archs

SHAPE = (1, 28, 28)
needs_prior = pytest.mark.skipif(not profile_path(PRIOR_TARGET).exists(), reason=f"no {PRIOR_TARGET} profile")


def _synthetic(weights: dict[str, float], base: float) -> list[dict]:
    """Records whose totals are the prior's block times scaled per kind, plus ``base``."""
    prior = ProfileLatencyModel.load(profile_path(PRIOR_TARGET), "int8")
    records = []
    for arch in sample_archs(10, seed=11):
        blocks = prior.block_ms(blocks_of(arch, SHAPE, 10, "int8"))
        total = base + sum(weights[b.kind] * ms for b, ms, _ in blocks)
        records.append({"arch": arch, "input_shape": list(SHAPE), "precision": "int8", "total_ms": total,
                        "spread": 0.01, "runs": 20})
    return records


@needs_prior
def test_attribution_recovers_per_kind_weights_and_keeps_each_total():
    truth = {"stem": 1.0, "basic": 0.7, "inverted": 2.5, "head": 1.0, "classifier": 1.0, "io": 1.0}
    records = _synthetic(truth, base=0.02)
    attributed, weights = attribute_by_prior(records)
    fitted = weights["int8"]["per_kind"]
    assert set(fitted) == set(KINDS)
    for kind in ("basic", "inverted"):  # the kinds that carry the time
        assert fitted[kind] == pytest.approx(truth[kind], rel=0.05)
    assert weights["int8"]["base_ms"] == pytest.approx(0.02, abs=0.01)
    for rec in attributed:
        blocks = rec["blocks"]
        assert set(blocks) == {b.path for b in blocks_of(rec["arch"], SHAPE, 10, "int8")}
        assert all(v["ms"] > 0 for v in blocks.values())
        assert sum(v["ms"] for v in blocks.values()) == pytest.approx(rec["total_ms"] - weights["int8"]["base_ms"],
                                                                      rel=1e-6)


@needs_prior
@pytest.mark.skipif(importlib.util.find_spec("executorch") is None, reason="executorch not installed")
def test_executorch_profile_is_fitted_from_whole_pte_timings(tmp_path):
    out = fit_profile("android-executorch-xnnpack", precisions=("int8",), networks_per_space=2,
                      input_shapes=((1, 12, 12),), out=tmp_path / "et.json", rounds=2, runs=10, time_limit_s=120)
    data = json.loads(out.read_text())
    prov = data["provenance"]
    assert prov["runtime"] == "executorch" and prov["versions"]["executorch"]
    assert prov["attribution"]["prior"] == PRIOR_TARGET and prov["measurements"]["networks"] == 4
    model = ProfileLatencyModel.load(out, "int8")
    measured = np.array([m["total_ms"] for m in data["measurements"]])
    predicted = np.array([model.predict_ms(m["arch"], m["input_shape"]) for m in data["measurements"]])
    assert np.all(measured > 0) and np.all(np.abs(predicted / measured - 1) < 0.5)


def test_profile_measured_on_another_isa_warns_naming_both(monkeypatch):
    import edgekd.hw.model as model_module

    if not profile_path("android-executorch-xnnpack").exists():
        pytest.skip("no ExecuTorch profile committed")
    monkeypatch.setattr(model_module, "cpu_model", lambda: "Some Other CPU 9000")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = latency_model("android-executorch-xnnpack")
    assert model.kind == "profile"
    texts = [str(w.message) for w in caught]
    measured_on = model.source["machine"]["machine"]
    assert any("aarch64" in t and measured_on in t for t in texts)
