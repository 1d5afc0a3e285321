"""Integrity: artifact.json records each file's sha256; edgekd.load and the edge server verify them."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import edgekd
from edgekd.backends.base import Artifact, file_sha256
from edgekd.errors import ArtifactNotFoundError, ConfigError, IntegrityError

from conftest import tiny_data, tiny_model

ROOT = Path(__file__).resolve().parents[2]


def _record(folder: Path) -> dict:
    return json.loads((folder / "artifact.json").read_text())


def _rewrite(folder: Path, **changes) -> None:
    data = _record(folder)
    data.update(changes)
    (folder / "artifact.json").write_text(json.dumps(data))


def test_artifact_records_sha256_of_every_model_file(compiled):
    artifact, _ = compiled
    record = _record(artifact.folder)["sha256"]
    assert set(record) == {"model.onnx", "model.fp32.onnx", "calibration.cache.json", "preprocess.json"}
    assert all(record[name] == file_sha256(artifact.folder / name) for name in record)


def test_artifact_record_is_bit_identical_across_rebuilds(compiled):
    artifact, out = compiled
    first = (artifact.folder / "artifact.json").read_bytes()
    edgekd.compile(tiny_model(), "x86-cpu-onnxruntime", tiny_data(), out)
    assert (artifact.folder / "artifact.json").read_bytes() == first


def test_load_runs_verified_artifact(compiled):
    artifact, _ = compiled
    logits = edgekd.load(artifact.folder)(tiny_data()[0][:4])
    assert logits.shape == (4, 3) and np.isfinite(logits).all()


@pytest.mark.parametrize("name", ["model.onnx", "model.fp32.onnx", "preprocess.json", "calibration.cache.json"])
def test_load_refuses_bit_flipped_file(compiled, name):
    artifact, _ = compiled
    path = artifact.folder / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        edgekd.load(artifact.folder)


def test_load_refuses_swapped_model(compiled):
    artifact, _ = compiled
    shutil.copy(artifact.folder / "model.fp32.onnx", artifact.folder / "model.onnx")
    with pytest.raises(IntegrityError):
        edgekd.load(artifact.folder)


def test_load_refuses_deleted_recorded_file(compiled):
    artifact, _ = compiled
    (artifact.folder / "model.fp32.onnx").unlink()
    with pytest.raises(IntegrityError):
        edgekd.load(artifact.folder)


def test_load_refuses_record_without_hashes(compiled):
    artifact, _ = compiled
    _rewrite(artifact.folder, sha256={})
    with pytest.raises(IntegrityError):
        edgekd.load(artifact.folder)


def test_load_with_verify_false_runs_tampered_model_and_logs(compiled, caplog):
    artifact, _ = compiled
    shutil.copy(artifact.folder / "model.fp32.onnx", artifact.folder / "model.onnx")
    runner = edgekd.load(artifact.folder, verify=False)
    assert runner(tiny_data()[0][:2]).shape == (2, 3)
    assert any(r.levelname == "WARNING" and "verify=False" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("bad_path", ["/etc/hostname", "../x.onnx", "../../x.onnx", "sub/../../x.onnx", ""])
def test_artifact_read_refuses_model_path_outside_folder(compiled, bad_path):
    artifact, _ = compiled
    _rewrite(artifact.folder, path=bad_path)
    with pytest.raises(ConfigError):
        Artifact.read(artifact.folder)


@pytest.mark.parametrize("bad_file", ["/etc/passwd", "../preprocess.json"])
def test_artifact_read_refuses_file_role_outside_folder(compiled, bad_file):
    artifact, _ = compiled
    _rewrite(artifact.folder, files={"preprocess": bad_file})
    with pytest.raises(ConfigError):
        Artifact.read(artifact.folder)


def test_load_refuses_model_linked_to_outside(compiled, tmp_path):
    artifact, _ = compiled
    outside = tmp_path / "evil.onnx"
    shutil.copy(artifact.folder / "model.onnx", outside)
    (artifact.folder / "model.onnx").unlink()
    (artifact.folder / "model.onnx").symlink_to(outside)
    with pytest.raises((IntegrityError, ConfigError)):
        edgekd.load(artifact.folder)


@pytest.mark.parametrize("where", ["missing-folder", "missing-file.onnx", "artifact.json"])
def test_load_says_not_found_for_missing_artifact(tmp_path, where):
    with pytest.raises(ArtifactNotFoundError):
        edgekd.load(tmp_path / "nowhere" / where)


def test_load_says_not_found_for_folder_without_record(tmp_path):
    with pytest.raises(ArtifactNotFoundError):
        edgekd.load(tmp_path)


@pytest.mark.parametrize("text", ["", "[]", "null", "{", '{"path": 3}', '{"path": "model.onnx"}', "\udcff",
                                  "[" * 100000])
def test_artifact_read_refuses_malformed_record(compiled, text):
    artifact, _ = compiled
    (artifact.folder / "artifact.json").write_text(text, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(ConfigError):
        Artifact.read(artifact.folder)


# the edge server ---------------------------------------------------------------------------------------------

def _server(folder, **config):
    sys.path.insert(0, str(ROOT / "apps" / "edge-server"))
    from edge_server import ServerConfig, create_app
    from fastapi.testclient import TestClient

    return TestClient(create_app(folder, ServerConfig(**config)))


def _fake_report(artifact, sha256) -> None:
    report = {"artifact": {"accuracy": 0.999, "sha256": sha256}, "gate": {"passed": True}}
    (artifact.folder / "report.json").write_text(json.dumps(report))


def test_server_health_shows_verified_and_matching_report(compiled):
    artifact, _ = compiled
    _fake_report(artifact, _record(artifact.folder)["sha256"])
    with _server(artifact.folder) as client:
        info = client.get("/health").json()["artifact"]
    assert info["verified"] is True and info["report_verified"] is True and info["validated_accuracy"] == 0.999


def test_server_hides_accuracy_of_report_for_another_artifact(compiled):
    artifact, _ = compiled
    _fake_report(artifact, {"model.onnx": "0" * 64})
    with _server(artifact.folder) as client:
        info = client.get("/health").json()["artifact"]
    assert info["report_verified"] is False and info["validated_accuracy"] is None and info["gate_passed"] is None


def test_server_refuses_to_start_on_tampered_artifact(compiled):
    artifact, _ = compiled
    shutil.copy(artifact.folder / "model.fp32.onnx", artifact.folder / "model.onnx")
    with pytest.raises(IntegrityError):
        _server(artifact.folder)


def test_server_without_verify_says_unverified_and_hides_accuracy(compiled):
    artifact, _ = compiled
    _fake_report(artifact, _record(artifact.folder)["sha256"])
    shutil.copy(artifact.folder / "model.fp32.onnx", artifact.folder / "model.onnx")
    with _server(artifact.folder, verify=False) as client:
        info = client.get("/health").json()["artifact"]
    assert info["verified"] is False and info["validated_accuracy"] is None


def test_server_refuses_labels_that_disagree_with_model(compiled):
    artifact, _ = compiled
    spec_path = artifact.folder / "preprocess.json"
    spec = json.loads(spec_path.read_text())
    spec["labels"] = [str(i) for i in range(5)]  # the model has 3 outputs
    spec_path.write_text(json.dumps(spec))
    artifact = Artifact.read(artifact.folder)
    artifact.save()  # re-record the hashes: the file is consistent, only its labels are wrong
    with pytest.raises(ConfigError):
        _server(artifact.folder)


@pytest.mark.parametrize("field,value", [("static_batch", -3), ("static_batch", 10**12), ("static_batch", True),
                                         ("static_batch", "4"), ("input_shape", [1, -6, 6]), ("input_shape", []),
                                         ("input_shape", [1, 10**9, 6]), ("input_shape", "1x6x6")])
def test_artifact_read_refuses_out_of_range_record_field(compiled, field, value):
    artifact, _ = compiled
    _rewrite(artifact.folder, **{field: value})
    with pytest.raises(ConfigError):
        Artifact.read(artifact.folder)


@pytest.mark.slow
@pytest.mark.parametrize("tamper", ["swap", "missing"])
def test_server_main_exits_with_one_line_on_bad_artifact(compiled, tamper, tmp_path):
    import subprocess

    artifact, _ = compiled
    if tamper == "swap":
        shutil.copy(artifact.folder / "model.fp32.onnx", artifact.folder / "model.onnx")
        where = artifact.folder
    else:
        where = tmp_path / "nowhere"
    proc = subprocess.run([sys.executable, "-m", "edge_server", str(where), "--port", "0"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT / "apps" / "edge-server")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "error" in proc.stderr
