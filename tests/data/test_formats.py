import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from edgekd.data import PreprocessSpec, load_dataset, load_idx_dataset, load_image_folder, read_idx
from edgekd.errors import ConfigError, DataError


def _write_idx(path, array, code):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def test_idx_pair_roundtrip_plain_and_gzip(tmp_path):
    images = np.random.default_rng(0).integers(0, 255, (6, 5, 4), dtype=np.uint8)
    labels = np.arange(6, dtype=np.uint8) % 3
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images, 0x08)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels, 0x08)
    x, y = load_idx_dataset(tmp_path, "train")
    assert x.shape == (6, 1, 5, 4) and np.array_equal(x[:, 0], images) and np.array_equal(y, labels)


def test_read_idx_rejects_truncated_file(tmp_path):
    path = tmp_path / "t-images-idx3-ubyte"
    _write_idx(path, np.zeros((3, 2, 2), np.uint8), 0x08)
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match="promises 12 bytes"):
        read_idx(path)


def test_image_folder_decodes_classes_in_sorted_order(tmp_path):
    for cls, value in (("cat", 10), ("ant", 200)):
        (tmp_path / cls).mkdir()
        Image.new("RGB", (12, 10), (value, value, value)).save(tmp_path / cls / "a.png")
    (tmp_path / "cat" / "notes.txt").write_text("ignored")
    x, y, classes = load_image_folder(tmp_path, (8, 8), "rgb")
    assert classes == ["ant", "cat"] and x.shape == (2, 3, 8, 8) and y.tolist() == [0, 1]
    assert x[0].mean() == pytest.approx(200, abs=1)


def test_image_folder_names_the_undecodable_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png"):
        load_image_folder(tmp_path, (8, 8))


def test_builtin_mnist5k_is_real_stratified_data_with_its_spec():
    bundle = load_dataset("mnist5k")
    assert len(bundle.train) == 5000 and bundle.train.input_shape == (1, 28, 28)
    assert np.bincount(bundle.train.y.numpy()).tolist() == [500] * 10
    assert abs(float(bundle.train.x.mean())) < 0.1  # normalized with its own mean/std
    assert bundle.spec.labels[3] == "3"


def test_spec_roundtrip_and_normalization(tmp_path):
    spec = PreprocessSpec(input_shape=(1, 4, 4), color="gray", mean=(0.5,), std=(0.25,), labels=("a", "b"))
    loaded = PreprocessSpec.load(spec.save(tmp_path / "p.json"))
    assert loaded == spec
    image = Image.new("L", (9, 9), 255)
    assert np.allclose(loaded.from_image(image), 2.0)  # (1.0 - 0.5) / 0.25


def test_spec_load_rejects_unknown_keys(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"schema": "edgekd.preprocess/1", "input_shape": [1, 2, 2], "labels": ["a"], "extra": 1}')
    with pytest.raises(ConfigError, match="p.json"):
        PreprocessSpec.load(path)
