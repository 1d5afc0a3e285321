"""Calibrators on synthetic activations with known answers, and the cache written with the artifact."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekd.calibrate import MSE, Entropy, MinMax, Percentile, TensorStats, calibrator_for, read_cache
from edgekd.calibrate.collect import accumulate
from edgekd.calibrate.methods import BINS
from edgekd.errors import ConfigError


def _stats(values: np.ndarray) -> TensorStats:
    s = TensorStats(float(values.min()), float(values.max()))
    s.hist, s.abs_hist = np.zeros(BINS, np.int64), np.zeros(BINS, np.int64)
    accumulate(s, values)
    return s


@pytest.fixture(scope="module")
def gauss_with_outlier():
    v = np.random.default_rng(0).standard_normal(200_000).astype(np.float32)
    v[0] = 40.0  # one far outlier: min-max keeps it, the others should clip it
    return _stats(v)


def test_minmax_keeps_the_extremes(gauss_with_outlier):
    s = gauss_with_outlier
    assert MinMax().range(s, symmetric=False) == (s.lo, s.hi)
    assert MinMax().range(s, symmetric=True) == (-40.0, 40.0)


def test_percentile_clips_the_outlier_but_not_the_bulk(gauss_with_outlier):
    lo, hi = Percentile(99.99).range(gauss_with_outlier, symmetric=True)
    assert hi == -lo
    assert 3.0 < hi < 6.0  # the 99.99th percentile of |N(0,1)| is about 3.9


def test_entropy_threshold_clips_the_outlier(gauss_with_outlier):
    lo, hi = Entropy().range(gauss_with_outlier, symmetric=True)
    assert 2.0 < hi < 20.0, hi


def test_mse_range_beats_minmax_on_the_error_it_minimises(gauss_with_outlier):
    s = gauss_with_outlier
    centers, counts = s.centers(), s.hist.astype(float)

    def err(lo, hi):
        scale = (hi - lo) / 254
        q = np.clip(np.round((centers - lo) / scale), 0, 254) * scale + lo
        return float(np.sum(counts * (q - centers) ** 2))

    lo, hi = MSE().range(s, symmetric=True)
    assert hi < 40.0
    assert err(lo, hi) < err(-40.0, 40.0)


def test_non_negative_tensors_keep_a_zero_lower_bound():
    s = _stats(np.abs(np.random.default_rng(1).standard_normal(50_000)).astype(np.float32))
    for calibrator in (MinMax(), Percentile(99.9), Entropy(), MSE()):
        lo, hi = calibrator.range(s, symmetric=False)
        assert lo >= 0.0 and hi > 0.5, (calibrator.name, lo, hi)


def test_calibrator_for_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="entropy, minmax, mse, percentile"):
        calibrator_for("kl")


@pytest.mark.parametrize("method", ["minmax", "percentile", "mse"])
def test_cache_is_written_with_the_artifact_and_its_ranges_reach_the_qdq_model(method, digits, tmp_path):
    import onnx

    from edgekd.compile import compile as compile_model
    from edgekd.models import create_student
    from edgekd.targets import load_recipe, load_target

    train, _, spec = digits
    model = create_student("resnet", tuple(spec.input_shape), 10, width_mult=0.5).eval()
    recipe = load_recipe(f"{method}-256")
    target = load_target("x86-cpu-onnxruntime")
    target = target.model_copy(update={"calibration": target.calibration.model_copy(update={"recipe": recipe.name})})
    artifact = compile_model(model, target, (train.x.numpy(), train.y.numpy()), tmp_path)
    cache = read_cache(artifact.folder / artifact.files["calibration_cache"])
    assert cache.method == method and cache.samples == 256
    graph = onnx.load(str(artifact.path)).graph
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    checked = 0
    for node in graph.node:  # every activation Q's scale is the uint8 scale of the cached range
        if node.op_type == "QuantizeLinear" and node.input[0] in cache.ranges:
            lo, hi = cache.ranges[node.input[0]]
            expected = (max(hi, 0.0) - min(lo, 0.0)) / 255.0
            assert np.isclose(float(inits[node.input[1]]), expected, rtol=1e-4), node.input[0]
            checked += 1
    assert checked >= 5
    assert json.loads((artifact.folder / "artifact.json").read_text())["files"]["calibration_cache"]
