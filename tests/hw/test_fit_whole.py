"""Whole-network latency profiles (ExecuTorch): the linear cost model, the fit from .pte timings, and
the warning when the profile's machine is not the device's ISA."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest

from edgekd.hw.features import LINEAR_FEATURES, blocks_of
from edgekd.hw.fit import fit_profile
from edgekd.hw.fit_whole import fit_linear_table
from edgekd.hw.model import ProfileLatencyModel, latency_model, profile_path
from edgekd.hw.sampling import sample_archs

SHAPES = [(1, 28, 28), (3, 64, 64)]


def _records(archs, coef: np.ndarray) -> list[dict]:
    """Whole-network records whose totals are exactly linear in the blocks' features."""
    return [{"arch": arch, "input_shape": list(shape), "precision": "int8", "spread": 0.01, "runs": 20,
             "total_ms": float(sum(coef @ b.linear_vector() for b in blocks_of(arch, shape, 10, "int8")))}
            for i, arch in enumerate(archs) for shape in [SHAPES[i % len(SHAPES)]]]


def test_linear_fit_predicts_unseen_networks_of_a_linear_runtime():
    rng = np.random.default_rng(0)
    coef = rng.uniform(0.001, 0.5, len(LINEAR_FEATURES))
    fitting, unseen = _records(sample_archs(20, seed=11), coef), _records(sample_archs(5, seed=12), coef)
    table = fit_linear_table(fitting, "int8")
    assert table["linear"]["features"] == list(LINEAR_FEATURES) and min(table["linear"]["coef"]) >= 0
    assert table["fit"]["in_sample_within_10pct"] == 1.0
    model = ProfileLatencyModel(table, "int8", {"input_shapes": [list(s) for s in SHAPES]})
    for rec in unseen:
        assert model.predict_ms(rec["arch"], rec["input_shape"]) == pytest.approx(rec["total_ms"], rel=0.05)
    assert {src for _, _, src in model.block_ms(blocks_of(unseen[0]["arch"], SHAPES[0], 10, "int8"))} == {"linear"}


@pytest.mark.skipif(importlib.util.find_spec("executorch") is None, reason="executorch not installed")
def test_executorch_profile_is_fitted_from_whole_pte_timings(tmp_path, monkeypatch):
    """Real .pte compiles, timings replaced by a known cost (the timer has its own tests; four timings on a
    loaded machine would test the load)."""
    from edgekd.hw import fit_whole
    from edgekd.hw.profiler import ProfileResult

    timed = []

    def fake_profile_many(files, **kwargs):
        out = {}
        for name, (path, shape) in files.items():
            assert path.suffix == ".pte" and path.stat().st_size > 0 and kwargs["runtime"] == "executorch"
            ms = 0.02 + 0.3 * path.stat().st_size / 1e6  # a stand-in cost that differs between networks
            timed.append(ms)
            out[name] = ProfileResult(ms, ms, ms, 0.01, 0.01, 10, [ms], True, 0.1)
        return out

    monkeypatch.setattr(fit_whole, "profile_many", fake_profile_many)
    out = fit_profile("android-executorch-xnnpack", precisions=("int8",), networks_per_space=2,
                      input_shapes=((1, 12, 12),), out=tmp_path / "et.json", time_limit_s=120)
    data = json.loads(out.read_text())
    prov = data["provenance"]
    assert prov["runtime"] == "executorch" and prov["versions"]["executorch"]
    assert prov["measurements"]["networks"] == 4 and "linear" in data["precisions"]["int8"]
    assert sorted(m["total_ms"] for m in data["measurements"]) == sorted(timed)
    model = ProfileLatencyModel.load(out, "int8")
    measured = np.array([m["total_ms"] for m in data["measurements"]])
    predicted = np.array([model.predict_ms(m["arch"], m["input_shape"]) for m in data["measurements"]])
    np.testing.assert_allclose(predicted, measured, rtol=0.15)  # 4 networks, 22 features: fitted in sample


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


def test_pooled_fit_times_every_network_in_one_shuffled_pool_and_reuses_the_cache(tmp_path, monkeypatch):
    """group=None: all networks in one interleaved pool; each record's spread is its own, drift divided out."""
    from edgekd.hw import fit_whole
    from edgekd.hw.profiler import ProfileResult

    compiles, pools = [], []

    def fake_compile(arch, shape, precision, folder, seed=0):
        compiles.append(shape)
        path = folder / f"{precision}.pte"
        path.write_bytes(repr((arch, shape)).encode())
        return path

    def fake_profile_many(files, **kwargs):
        pools.append((len(files), kwargs["shuffle"]))
        out = {}
        for name, (path, _) in files.items():
            ms = 0.01 * path.stat().st_size
            out[name] = ProfileResult(ms, ms, ms, 0.30, 0.01, 200, [ms] * 10, False, 1.0, spread_net_of_drift=0.02)
        return out

    monkeypatch.setattr(fit_whole, "compile_pte", fake_compile)
    monkeypatch.setattr(fit_whole, "profile_many", fake_profile_many)
    kwargs = dict(precisions=("int8",), networks_per_space=3, input_shapes=((1, 12, 12), (3, 16, 16)), group=None,
                  cache=tmp_path / "cache", time_limit_s=60)
    out = fit_profile("android-executorch-xnnpack", out=tmp_path / "et.json", raw_out=tmp_path / "raw.json", **kwargs)
    assert pools == [(6, True)] and len(compiles) == 6
    raw = json.loads((tmp_path / "raw.json").read_text())["records"]
    assert {r["spread"] for r in raw} == {0.02} and {r["machine_spread"] for r in raw} == {0.30}
    assert json.loads(out.read_text())["precisions"]["int8"]["fit"]["networks_in_fit"] == 6  # drift did not exclude
    fit_profile("android-executorch-xnnpack", out=tmp_path / "et2.json", **kwargs)
    assert len(compiles) == 6 and pools[-1] == (6, True)  # every file came from the cache
