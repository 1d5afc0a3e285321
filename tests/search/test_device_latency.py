"""A search for a device that is not this machine never takes this CPU's timings as its latency."""

import pytest

import edgekd
from edgekd.search import constraints


@pytest.mark.parametrize("target", ["raspberry-pi-onnxruntime", "snapdragon-htp-qnn"])
def test_search_never_times_candidates_for_a_device_that_is_not_here(digits, monkeypatch, target):
    def timed_here(*args, **kwargs):
        raise AssertionError("a candidate was timed on this CPU for another device")

    monkeypatch.setattr(constraints, "measure_onnx_ms", timed_here)
    train, _, _ = digits
    with pytest.warns(UserWarning, match="cannot be checked during search"):
        best = edgekd.search(None, train, target=target, space="resnet", score="params", population=4,
                             iterations=6, seed=0)
    assert best.predicted_latency_ms is None and best.latency_kind == "none"
