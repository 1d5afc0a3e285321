"""``edgekd compile MODEL``: a user's model file, gated; exit 0 pass, 1 gate failed, 2 bad input."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from edgekd.cli import EXIT_BAD_INPUT, EXIT_GATE_FAILED, app
from edgekd.models import TeacherCNN

ORT = Path(__file__).resolve().parents[2] / "targets" / "x86-cpu-onnxruntime.toml"


def _target(tmp_path: Path, name: str, weights: str = "int8", gate: str = "max_accuracy_drop = 1.0") -> Path:
    """A copy of x86-cpu-onnxruntime with another name, format and gate."""
    text = ORT.read_text().replace('name = "x86-cpu-onnxruntime"', f'name = "{name}"')
    if weights == "fp32":
        text = text.replace('weights = "int8"\nactivations = "uint8"', 'weights = "fp32"\nactivations = "fp32"')
    text = text.replace("max_accuracy_drop = 1.0   # points of top-1 below the teacher", gate)
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _run(*args) -> object:
    return CliRunner().invoke(app, ["compile", *map(str, args)])


def _gate(out: Path, name: str) -> dict:
    return json.loads((out / name / "artifact.json").read_text())["details"]["gate"]


def _state_dict(tmp_path: Path, model) -> Path:
    weights = tmp_path / "teacher.pt"
    torch.save(model.state_dict(), weights)
    weights.with_suffix(".json").write_text(json.dumps({"name": "TeacherCNN", "width": 16}))
    return weights


def test_compile_cli_state_dict_passes_fp32_gate(digits_teacher, tmp_path):
    target, out = _target(tmp_path, "ort-fp32", "fp32"), tmp_path / "out"
    result = _run(_state_dict(tmp_path, digits_teacher), "-t", target, "--dataset", "digits", "-o", out)
    assert result.exit_code == 0, result.output
    gate = _gate(out, "ort-fp32")
    assert gate["passed"] is True and gate["agreement"] == 1.0


def _outlier_channel(model) -> TeacherCNN:
    """The same function in fp32, but one first-layer channel sits at 1e4 (and is read by nobody):
    int8 with one per-tensor activation range for that layer loses every other channel."""
    broken = TeacherCNN((1, 8, 8), 10, width=16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["features.1.bias"][0] = 1e4
    state["features.3.weight"][:, 0] = 0.0
    broken.load_state_dict(state)
    return broken.eval()


def test_compile_cli_failing_gate_exits_1(digits_teacher, tmp_path):
    broken = _outlier_channel(digits_teacher)
    strict = "max_accuracy_drop = 1.0\nkeep_sensitive_float = false"
    target, out = _target(tmp_path, "ort-strict", gate=strict), tmp_path / "out"
    result = _run(_state_dict(tmp_path, broken), "-t", target, "--dataset", "digits", "-o", out)
    assert result.exit_code == EXIT_GATE_FAILED, result.output
    gate = _gate(out, "ort-strict")
    assert gate["passed"] is False and gate["agreement"] < 0.9
    assert gate["recovery"]["attempted"] is False


def test_compile_cli_onnx_file(digits_teacher, tmp_path):
    path = tmp_path / "teacher.onnx"
    torch.onnx.export(digits_teacher, (torch.zeros(1, 1, 8, 8),), str(path), dynamo=False, opset_version=17)
    target, out = _target(tmp_path, "ort-fp32", "fp32"), tmp_path / "out"
    result = _run(path, "-t", target, "--dataset", "digits", "-o", out)
    assert result.exit_code == 0, result.output
    assert _gate(out, "ort-fp32")["agreement"] == 1.0
    refused = _run(path, "-t", "android-executorch-xnnpack", "--dataset", "digits", "-o", tmp_path / "out2")
    assert refused.exit_code == EXIT_BAD_INPUT
    assert not (tmp_path / "out2").exists()


def test_compile_cli_exported_program_with_fixed_batch(digits_teacher, tmp_path):
    path = tmp_path / "teacher.pt2"
    torch.export.save(torch.export.export(digits_teacher, (torch.zeros(2, 1, 8, 8),)), str(path))
    target, out = _target(tmp_path, "ort-fp32", "fp32"), tmp_path / "out"
    result = _run(path, "-t", target, "--dataset", "digits", "-o", out)
    assert result.exit_code == 0, result.output
    assert _gate(out, "ort-fp32")["agreement"] == 1.0


def test_compile_cli_refuses_pickled_module_and_missing_files(digits_teacher, tmp_path):
    pickled = tmp_path / "model.pt"
    torch.save(digits_teacher, pickled)  # a whole module: not loadable with weights_only=True
    pickled.with_suffix(".json").write_text(json.dumps({"name": "TeacherCNN", "width": 16}))
    out = tmp_path / "out"
    result = _run(pickled, "--dataset", "digits", "-o", out)
    assert result.exit_code == EXIT_BAD_INPUT
    assert len(result.output.strip().splitlines()) == 1 and "weights_only" in result.output
    assert _run(tmp_path / "absent.pt", "--dataset", "digits", "-o", out).exit_code == EXIT_BAD_INPUT
    assert not out.exists()
