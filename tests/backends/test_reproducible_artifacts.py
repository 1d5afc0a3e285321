"""Same model, same calibration data, same machine: the QNN context and Core ML packages hash the same."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

import edgekd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)).eval()


def tiny_calib() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((64, 1, 8, 8)).astype(np.float32)


def build(target: str, out_dir) -> edgekd.backends.base.Artifact:
    return edgekd.compile(tiny_net(), target, tiny_calib(), out_dir, calib_size=32)


def build_in_child(target: str, out_dir: Path) -> None:
    """Build in a fresh interpreter: process-wide state (protobuf map order, id counters) differs there."""
    code = f"import sys; sys.path[:0] = [{str(HERE)!r}]; from {Path(__file__).stem} import build; build(*sys.argv[1:])"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    done = subprocess.run([sys.executable, "-c", code, target, str(out_dir)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def hashes(folder: Path) -> dict[str, str]:
    return {f.relative_to(folder).as_posix(): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(Path(folder).rglob("*")) if f.is_file()}


def _available(name: str) -> None:
    from edgekd.backends.base import get_backend

    try:
        ok, why = get_backend(name).is_available()
    except ImportError as exc:
        pytest.skip(f"{name}: {exc}")
    if not ok:
        pytest.skip(why)


# --- QNN context binary --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def qnn_twice(tmp_path_factory):
    """Two builds in this process (the second one used to get other HTP ids and another staging-path hash)."""
    _available("qnn")
    root = tmp_path_factory.mktemp("qnn")
    return build("snapdragon-htp-qnn", root / "a"), build("snapdragon-htp-qnn", root / "b")


def test_qnn_context_binary_is_bit_identical_when_built_twice(qnn_twice):
    a, b = qnn_twice
    assert {"context", "context_binary"} <= set(a.files)
    ha, hb = hashes(a.folder), hashes(b.folder)
    assert a.files["context_binary"] in ha and ha == hb
    assert a.details["reproducible"]["bit_identical"] is True


def test_qnn_context_model_runs_on_the_htp_and_matches_the_qdq_model(qnn_twice):
    from edgekd.backends.qnn import htp_session

    a = qnn_twice[0]
    ctx = htp_session(a.folder / a.files["context"])
    assert [n.op_type for n in onnx.load(a.folder / a.files["context"]).graph.node] == ["EPContext"]
    qdq = htp_session(a.path)
    x = tiny_calib()[:8]
    y_ctx = np.concatenate([ctx.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])
    y_qdq = np.concatenate([qdq.run(None, {"input": x[i : i + 1]})[0] for i in range(len(x))])
    np.testing.assert_array_equal(y_ctx, y_qdq)  # the same compiled graph: the same bits out
    with torch.no_grad():
        y_fp32 = tiny_net()(torch.from_numpy(x)).numpy()
    assert np.abs(y_ctx - y_fp32).max() < 0.1 * np.abs(y_fp32).max() + 1e-3  # int8, yet close to the float model


# --- Core ML packages ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def coreml_here(tmp_path_factory):
    pytest.importorskip("coremltools")
    return build("iphone-coreml", tmp_path_factory.mktemp("coreml") / "here")


def test_coreml_packages_are_bit_identical_across_processes(coreml_here, tmp_path):
    build_in_child("iphone-coreml", tmp_path / "child")
    here, child = hashes(coreml_here.folder), hashes(tmp_path / "child" / "iphone-coreml")
    assert sum(p.endswith("Manifest.json") for p in here) == 3  # fp16, int8 weights, W8A8
    assert here == child
    assert coreml_here.details["reproducible"]["bit_identical"] is True


def test_coreml_rewritten_packages_load_and_keep_the_converted_spec(coreml_here):
    import coremltools as ct
    from coremltools.libmodelpackage import ModelPackage

    from edgekd.backends.coreml import DATE_KEY, convert

    fresh = convert(tiny_net(), (1, 8, 8), 1, "fp16").get_spec()
    del fresh.description.metadata.userDefined[DATE_KEY]
    for role in ("fp16", "model", "w8a8"):
        package = coreml_here.folder / coreml_here.files[role]
        manifest = (package / "Manifest.json").read_bytes()
        spec = ct.models.MLModel(str(package), skip_model_load=True).get_spec()
        assert spec.WhichOneof("Type") == "mlProgram" and DATE_KEY not in spec.description.metadata.userDefined
        if role == "fp16":
            assert spec == fresh  # the same message as coremltools converted, less the date
        opened = ModelPackage(str(package))  # read-write: rewrites Manifest.json in its own layout when released
        assert Path(opened.getRootModel().path()).name == "model.mlmodel"
        assert uuid.UUID(opened.getRootModel().identifier()).version == 5
        del opened
        assert (package / "Manifest.json").read_bytes() == manifest  # our layout is libmodelpackage's


def test_coreml_conversion_date_follows_source_date_epoch(coreml_here, tmp_path, monkeypatch):
    import coremltools as ct

    from edgekd.backends.coreml import DATE_KEY, make_reproducible

    package = shutil.copytree(coreml_here.folder / coreml_here.files["fp16"], tmp_path / "p.mlpackage")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert make_reproducible(package) == {"bit_identical": True}
    meta = ct.models.MLModel(str(package), skip_model_load=True).get_spec().description.metadata.userDefined
    assert meta[DATE_KEY] == "2023-11-14"
    ids = set(json.loads((package / "Manifest.json").read_text())["itemInfoEntries"])
    assert ids != set(json.loads((coreml_here.folder / coreml_here.files["fp16"] / "Manifest.json").read_text())
                      ["itemInfoEntries"])  # the model bytes changed, so its id did


def test_coreml_manifest_is_left_alone_when_ids_are_referenced_elsewhere(coreml_here, tmp_path):
    from edgekd.backends.coreml import make_reproducible

    package = shutil.copytree(coreml_here.folder / coreml_here.files["model"], tmp_path / "p.mlpackage")
    manifest = json.loads((package / "Manifest.json").read_text())
    manifest["someFutureReference"] = manifest["rootModelIdentifier"]
    (package / "Manifest.json").write_text(json.dumps(manifest))
    record = make_reproducible(package)
    assert record["bit_identical"] is False and "outside itemInfoEntries" in record["why"]
    assert json.loads((package / "Manifest.json").read_text()) == manifest


def test_openvino_ir_is_identical_when_built_twice_in_one_process(tmp_path):
    pytest.importorskip("openvino")
    runs = []
    for run in ("a", "b"):  # in-process conversion named nodes from a counter: the second IR differed
        artifact = build("x86-cpu-openvino", tmp_path / run)
        assert artifact.details["reproducible"]["bit_identical"] is True
        runs.append({k: v for k, v in hashes(artifact.folder).items() if k != "artifact.json"})
    assert runs[0] == runs[1] and "model.xml" in runs[0]


def test_openvino_conversion_error_names_the_model(tmp_path):
    pytest.importorskip("openvino")
    from edgekd.backends.openvino import _convert
    from edgekd.errors import CompileError

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(CompileError, match="conversion of broken.onnx failed"):
        _convert(broken, tmp_path / "broken.xml")
    assert not (tmp_path / "broken.xml").exists()


def test_executorch_pte_is_identical_when_built_twice(tmp_path):
    pytest.importorskip("executorch")
    runs = []
    for run in ("a", "b"):
        artifact = build("android-executorch-xnnpack", tmp_path / run)
        assert artifact.details["reproducible"]["bit_identical"] is True
        runs.append(hashes(artifact.folder))
    assert runs[0] == runs[1] and any(name.endswith(".pte") for name in runs[0])
