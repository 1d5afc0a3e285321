"""The profiler: timing rounds, trimmed median, environment, runtimes present or missing."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from edgekd.errors import MissingExtraError
from edgekd.hw.profiler import profile, time_fn, trimmed_median
from hw_helpers import TINY


def test_trimmed_median_ignores_slow_outliers():
    times = np.r_[np.full(90, 1.0), np.full(10, 50.0)]
    assert trimmed_median(times, 0.1) == 1.0
    assert trimmed_median(np.arange(1, 11), 0.0) == 5.5


def test_time_fn_times_at_least_min_rounds_of_runs():
    result = time_fn(lambda: sum(range(500)), warmup=2, runs=50, min_rounds=3, max_rounds=4, time_limit_s=5)
    assert result.runs >= 150 and len(result.rounds) >= 3
    assert result.median_ms > 0 and np.isfinite(result.spread)
    assert result.stable == (result.spread <= 0.05)


def test_time_fn_stops_at_time_limit_when_never_stable():
    result = time_fn(lambda: None, warmup=0, runs=50, min_rounds=2, max_rounds=10_000, stable_spread=-1.0,
                     time_limit_s=0.2)
    assert not result.stable
    assert 2 <= len(result.rounds) < 10_000
    assert result.seconds < 5


def test_profile_onnxruntime_records_environment(tiny_onnx):
    result = profile(tiny_onnx, (1, 16, 16), threads=1, time_limit_s=2)
    env = result.env
    assert result.runs >= 150 and result.median_ms > 0
    assert env["runtime"] == "onnxruntime" and env["runtime_version"]
    assert env["threads"] == 1 and env["batch"] == 1 and env["precision"] == "fp32"
    assert env["cpu"] and env["input_shape"] == [1, 16, 16]


@pytest.mark.parametrize("runtime,extra", [("openvino", "openvino"), ("executorch", "executorch")])
def test_profile_names_the_extra_when_runtime_missing(tiny_onnx, monkeypatch, runtime, extra):
    monkeypatch.setitem(sys.modules, runtime, None)  # makes `import runtime` fail as if not installed
    with pytest.raises(MissingExtraError, match=rf"edgekd\[{extra}\]"):
        profile(tiny_onnx.with_suffix(".xml" if runtime == "openvino" else ".pte"), (1, 16, 16), runtime=runtime)


def test_profile_openvino_runs_onnx(tiny_onnx):
    if importlib.util.find_spec("openvino") is None:
        pytest.skip("openvino is not installed here: pip install 'edgekd[openvino]'")
    result = profile(tiny_onnx, (1, 16, 16), runtime="openvino", precision="fp32", time_limit_s=2)
    assert result.env["runtime"] == "openvino" and result.median_ms > 0 and result.runs >= 150


def test_profile_executorch_runs_pte(tmp_path):
    if importlib.util.find_spec("executorch") is None:
        pytest.skip("executorch is not installed here: pip install 'edgekd[executorch]'")
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from edgekd.models import create_student

    kwargs = dict(TINY)
    model = create_student(kwargs.pop("name"), (1, 16, 16), 10, **kwargs).eval()
    example = (torch.randn(1, 1, 16, 16),)
    lowered = to_edge_transform_and_lower(torch.export.export(model, example), partitioner=[XnnpackPartitioner()])
    pte = tmp_path / "tiny.pte"
    pte.write_bytes(lowered.to_executorch().buffer)
    result = profile(pte, (1, 16, 16), precision="fp32", time_limit_s=2)
    assert result.env["runtime"] == "executorch" and result.median_ms > 0
