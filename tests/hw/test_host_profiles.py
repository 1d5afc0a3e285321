"""Latency profiles per CPU: the one fitted here is preferred; one from another CPU is rescaled by anchors."""

from __future__ import annotations

import json
import math

import pytest

import edgekd.hw.model as model_module
from edgekd.hw.fit import compile_onnx
from edgekd.hw.host import HostScaledLatencyModel, cpu_slug, measure_host_scale
from edgekd.hw.model import FasterOfLatencyModel, ProfileLatencyModel, latency_model, profile_path
from edgekd.hw.profiler import profile
from edgekd.targets import load_target

TARGET = "x86-cpu-onnxruntime"
OTHER_CPU = "Some Other CPU(R) 9000"
SHAPE = (1, 28, 28)


def _shipped_default():
    path = profile_path(TARGET, cpu=OTHER_CPU)  # no profile of that CPU: the shipped default
    if not path.exists():
        pytest.skip(f"no fitted profile committed: edgekd profile --target {TARGET} --fit")
    return path


def test_cpu_slug_is_a_plain_file_name():
    assert cpu_slug("Intel(R) Xeon(R) Processor") == "intel-xeon-processor"
    assert cpu_slug("AMD EPYC 7B13 64-Core Processor") == "amd-epyc-7b13-64-core-processor"


def test_a_profile_fitted_on_this_cpu_is_preferred_and_used_as_it_is(tmp_path, monkeypatch):
    data = json.loads(_shipped_default().read_text())
    data["provenance"]["machine"]["cpu"] = OTHER_CPU
    (tmp_path / "profiles").mkdir()
    own = tmp_path / "profiles" / f"{TARGET}@{cpu_slug(OTHER_CPU)}.json"
    own.write_text(json.dumps(data))
    monkeypatch.setenv("EDGEKD_TARGETS_DIR", str(tmp_path))
    monkeypatch.setattr(model_module, "cpu_model", lambda: OTHER_CPU)
    assert profile_path(TARGET) == own
    assert profile_path(TARGET, for_writing=True).name == own.name  # `edgekd profile --fit` writes this CPU's
    model = latency_model(TARGET, "int8", input_shape=SHAPE)
    assert type(model) is ProfileLatencyModel and model.source["file"] == str(own)


def test_a_profile_from_another_cpu_is_rescaled_by_anchors_timed_here(monkeypatch):
    _shipped_default()
    monkeypatch.setattr(model_module, "cpu_model", lambda: OTHER_CPU)
    with pytest.warns(UserWarning, match="rescaled"):
        model = latency_model(TARGET, "int8", input_shape=SHAPE)
    assert isinstance(model, HostScaledLatencyModel) and model.kind == "profile"
    scale = model.source["host_scale"]
    arch = {"name": "resnet", "depths": (1, 1, 1), "widths": (12, 24, 48)}
    assert model.predict_ms(arch, SHAPE) == pytest.approx(scale["factor"] * model.base.predict_ms(arch, SHAPE))
    assert scale["ratio_range"][0] <= scale["unrounded"] <= scale["ratio_range"][1]
    assert model.covers(SHAPE) and model.precision == "int8"  # the base profile's answers
    with pytest.warns(UserWarning, match="fitted on"):  # no input shape: no anchors, the plain warning
        assert type(latency_model(TARGET, "int8")) is ProfileLatencyModel


def test_a_speed_gated_target_is_priced_at_the_faster_of_int8_and_fp32():
    _shipped_default()
    assert load_target(TARGET).gate.speed_gate  # it ships fp32 where int8 is not faster
    model = latency_model(TARGET)
    assert isinstance(model, FasterOfLatencyModel) and model.kind == "profile"
    int8, fp32 = (latency_model(TARGET, p) for p in ("int8", "fp32"))
    for arch in ({"name": "resnet", "depths": (1, 1, 1), "widths": (8, 16, 32)},
                 {"name": "resnet", "depths": (3, 3, 3), "widths": (32, 64, 128)},
                 {"name": "mobilenetv2", "widths": (16, 24, 32), "depths": (1, 2, 2), "expansions": (6, 6, 6),
                  "kernels": (5, 5, 5)}):
        assert model.predict_ms(arch, SHAPE) == min(int8.predict_ms(arch, SHAPE), fp32.predict_ms(arch, SHAPE))
    assert type(latency_model("android-executorch-xnnpack")) is ProfileLatencyModel  # no speed gate there


class _FiveTimesFaster:
    """A profile as if fitted on a CPU five times faster than the one it is read on."""

    def __init__(self, base):
        self.base, self.precision, self.source = base, base.precision, base.source

    def predict_ms(self, arch, input_shape, num_classes=10):
        return self.base.predict_ms(arch, input_shape, num_classes) / 5


def test_host_scale_brings_a_far_off_profile_near_what_this_cpu_measures(tmp_path):
    base = ProfileLatencyModel.load(_shipped_default(), "int8")
    off = _FiveTimesFaster(base)
    scaled = HostScaledLatencyModel(off, measure_host_scale(off, "onnxruntime", SHAPE))
    arch = {"name": "resnet", "depths": (2, 1, 1), "widths": (12, 24, 48)}  # not an anchor
    measured = profile(compile_onnx(arch, SHAPE, "int8", tmp_path)[1], SHAPE, runtime="onnxruntime").median_ms
    raw_error = abs(math.log(off.predict_ms(arch, SHAPE) / measured))
    scaled_error = abs(math.log(scaled.predict_ms(arch, SHAPE) / measured))
    assert raw_error > math.log(4) and scaled_error < math.log(2)


def _on_the_profiles_own_cpu(monkeypatch, factor: float):
    """This machine is the CPU the shipped default was fitted on; anchors 'measure' ``factor``."""
    import edgekd.hw.host as host_module

    fitted_on = json.loads(_shipped_default().read_text())["provenance"]["machine"]["cpu"]
    monkeypatch.setattr(model_module, "cpu_model", lambda: fitted_on)
    monkeypatch.setattr(host_module, "_cache", {})
    timed = []

    def anchors(base, runtime, input_shape, **kwargs):
        timed.append(tuple(input_shape))
        return {"factor": factor, "unrounded": factor, "input_shape": list(input_shape), "anchors": 5,
                "ratio_range": [factor, factor], "runtime": runtime}

    monkeypatch.setattr(host_module, "measure_host_scale", anchors)
    return timed


def _with_rescale(value: str):
    target = load_target(TARGET)
    return target.model_copy(update={"latency": target.latency.model_copy(update={"rescale": value})})


def test_this_cpus_own_profile_is_used_as_it_is_unless_the_target_asks_for_a_drift_check(monkeypatch):
    timed = _on_the_profiles_own_cpu(monkeypatch, 1.2)
    assert load_target(TARGET).latency.rescale == "other-cpu"
    assert type(latency_model(TARGET, "int8", input_shape=SHAPE)) is ProfileLatencyModel and not timed
    with pytest.warns(UserWarning, match=r"×1\.20"):
        checked = latency_model(_with_rescale("always"), "int8", input_shape=SHAPE)
    assert isinstance(checked, HostScaledLatencyModel) and timed == [SHAPE]
    arch = {"name": "resnet", "depths": (1, 1, 1), "widths": (12, 24, 48)}
    assert checked.predict_ms(arch, SHAPE) == pytest.approx(1.2 * checked.base.predict_ms(arch, SHAPE))


def test_a_drift_check_that_finds_the_fitted_speed_changes_nothing_and_says_nothing(monkeypatch):
    import warnings

    _on_the_profiles_own_cpu(monkeypatch, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked = latency_model(_with_rescale("always"), "int8", input_shape=SHAPE)
    arch = {"name": "resnet", "depths": (1, 1, 1), "widths": (12, 24, 48)}
    assert checked.predict_ms(arch, SHAPE) == checked.base.predict_ms(arch, SHAPE)
    assert checked.source["host_scale"]["factor"] == 1.0  # the report shows the check was made


def test_rescale_never_uses_another_cpus_profile_as_it_is_with_the_warning(monkeypatch):
    _shipped_default()
    timed = _on_the_profiles_own_cpu(monkeypatch, 3.0)
    monkeypatch.setattr(model_module, "cpu_model", lambda: OTHER_CPU)
    with pytest.warns(UserWarning, match="fitted on"):
        model = latency_model(_with_rescale("never"), "int8", input_shape=SHAPE)
    assert type(model) is ProfileLatencyModel and not timed


def test_a_target_file_with_an_unknown_rescale_value_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="rescale"):
        type(load_target(TARGET).latency).model_validate({"rescale": "sometimes"})
