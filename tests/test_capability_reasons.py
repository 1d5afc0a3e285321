"""One short "why not" per target and backend: no file paths, no doubled status, the full text kept."""

from __future__ import annotations

import re

import pytest

from edgekd.capability import capability, short_reason
from edgekd.targets import list_targets

NPU = ('OpenVINO 2026.4.1 cannot use device NPU: VCL compiler loading failed, aborting. Error: Exception from '
       'src/plugins/intel_npu/src/utils/src/vcl/vcl_api.cpp:22: Cannot load library "/root/.pyenv/versions/3.11.7/'
       'lib/python3.11/site-packages/openvino/../openvino/libs/libopenvino_intel_npu_compiler_loader.so": /root/'
       '.pyenv/versions/3.11.7/lib/libopenvino_intel_npu_compiler_loader.so: cannot open shared object file')
ABSOLUTE_PATH = re.compile(r"(?:^|[\s\"'(])/\w")


def test_short_reason_drops_paths_and_the_exception_dump():
    short = short_reason(NPU)
    assert short == "OpenVINO 2026.4.1 cannot use device NPU: VCL compiler loading failed, aborting."
    assert not ABSOLUTE_PATH.search(short)


@pytest.mark.parametrize("text, expected", [
    ("not run here: not run here: needs macOS", "needs macOS"),
    ("tensorrt: not run here: engine not built", "engine not built"),
    ("openvino NPU: not run here: no NPU", "no NPU"),
    ("cannot load /usr/lib/x86_64/libfoo.so: missing", "cannot load libfoo.so: missing"),
    ("", ""),
])
def test_short_reason_states_the_reason_once(text, expected):
    assert short_reason(text) == expected


def test_short_reason_cuts_long_text_on_a_clause_and_closes_parentheses():
    text = ("not measured on the device (it is aarch64, this machine is x86_64; " + "the same artifact runs here " * 5
            + ")")
    short = short_reason(text, limit=80)
    assert len(short) <= 82 and short.endswith("…)") and short.count("(") == short.count(")")


@pytest.mark.parametrize("target", list_targets(), ids=lambda t: t.name)
def test_short_reason_of_every_target_is_one_short_line(target):
    cap = capability(target)
    assert "not run here" not in cap.latency_reason.lower()  # the run reason, not repeated with its status
    for full in (cap.build_reason, cap.run_reason, cap.latency_reason):
        short = short_reason(full)
        assert len(short) <= 101 and "\n" not in short and not ABSOLUTE_PATH.search(short)
        assert not short.lower().startswith("not run here")
        assert short_reason(short) == short or short.endswith("…") or short.endswith("…)")


def test_doctor_installed_means_the_runtime_package_imports():
    from edgekd.backends.doctor import doctor

    rows = {r["backend"]: r for r in doctor()}
    for backend, package in (("tensorrt", "tensorrt"), ("onnxruntime", "onnxruntime")):
        try:
            __import__(package)
            importable = True
        except ImportError:
            importable = False
        assert rows[backend]["installed"] is importable
        assert importable or package in rows[backend]["installed_reason"]
    assert rows["tensorrt"]["builds"]  # its QDQ ONNX needs no tensorrt
