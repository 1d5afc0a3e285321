"""An artifact's size is the bytes of its model: the file, or everything in a model that is a folder."""

from __future__ import annotations

import pytest
import torch

from edgekd.backends.base import Artifact


def _artifact(path):
    return Artifact(path=path, backend="coreml", target="t", precision="int8", input_shape=(1, 8, 8))


def test_artifact_size_of_a_folder_model_is_the_sum_of_its_files(tmp_path):
    package = tmp_path / "model.mlpackage"
    (package / "Data" / "weights").mkdir(parents=True)
    (package / "Manifest.json").write_bytes(b"x" * 300)
    (package / "Data" / "weights" / "weight.bin").write_bytes(b"w" * 123_456)
    assert _artifact(package).size_bytes == 123_756  # not the folder entry's 4096


def test_artifact_size_of_a_file_model_is_its_length(tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"m" * 5000)
    assert _artifact(model).size_bytes == 5000


def test_coreml_artifact_size_is_its_package_bytes(digits, tmp_path):
    pytest.importorskip("coremltools")
    import edgekd
    from edgekd.models import create_student

    train, _, spec = digits
    torch.manual_seed(0)
    model = create_student("resnet", tuple(spec.input_shape), 10, width_mult=0.5).eval()
    artifact = edgekd.compile(model, "iphone-coreml", (train.x.numpy()[:64], train.y.numpy()[:64]), tmp_path)
    files = [f for f in artifact.path.rglob("*") if f.is_file()]
    assert artifact.path.is_dir() and artifact.size_bytes == sum(f.stat().st_size for f in files) > 4096
    assert artifact.size_bytes in artifact.details["sizes_bytes"].values()  # what the backend measured itself
