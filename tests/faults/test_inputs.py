"""User errors in data, model files, calibration caches and checkpoints: a specific EdgeKDError, no traceback."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import edgekd
from edgekd.backends.base import Artifact
from edgekd.calibrate.cache import read_cache
from edgekd.data.sources import MAX_CLASSES, as_array_data
from edgekd.distill.checkpoint import load_checkpoint
from edgekd.errors import ArtifactLoadError, CheckpointError, ConfigError, DataError

from conftest import tiny_data, tiny_model

X = np.zeros((6, 1, 4, 4), np.float32)
Y = np.array([0, 1, 2, 0, 1, 2])


class Raising(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if i == 2:
            raise RuntimeError("disk read failed")
        return torch.zeros(1, 4, 4), 0


class Bare(Dataset):  # returns inputs only, no labels
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.zeros(1, 4, 4)


class Dicts(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return {"image": torch.zeros(1, 4, 4), "label": i}


class Ragged(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return torch.zeros(1, 4 + i, 4), i


class VectorLabel(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return torch.zeros(1, 4, 4), torch.tensor([i, i])


class NoLen(Dataset):
    def __getitem__(self, i):
        return torch.zeros(1, 4, 4), 0


def _raising_loader():
    return DataLoader(Raising(), batch_size=2)


BAD_DATA = {
    "strings-x": (np.array([[["a"]]] * 6), Y),
    "complex-x": (X.astype(np.complex64) + 1j, Y),
    "object-x": (np.array([object()] * 6, dtype=object), Y),
    "ragged-x": ([[[[0.0]]], [[[0.0, 1.0]]]], [0, 1]),
    "nan-x": (np.full_like(X, np.nan), Y),
    "inf-x": (np.full_like(X, np.inf), Y),
    "3d-x": (np.zeros((6, 4, 4), np.float32), Y),
    "huge-label": (X, np.array([0, 1, 2, 0, 1, 2**40])),
    "label-at-limit": (X, np.array([0, 1, 2, 0, 1, MAX_CLASSES])),
    "negative-label": (X, np.array([0, 1, 2, 0, 1, -1])),
    "float-label": (X, np.array([0, 1, 2, 0, 1, 0.5])),
    "nan-label": (X, np.array([0, 1, 2, 0, 1, np.nan])),
    "inf-label": (X, np.array([0, 1, 2, 0, 1, np.inf])),
    "string-label": (X, np.array(["a", "b", "c", "a", "b", "c"])),
    "2d-label": (X, Y[:, None]),
    "length-mismatch": (X, Y[:4]),
    "empty": (X[:0], Y[:0]),
    "dataset-raises": Raising(),
    "dataset-bare-tensors": Bare(),
    "dataset-dicts": Dicts(),
    "dataset-ragged": Ragged(),
    "dataset-vector-label": VectorLabel(),
    "dataset-no-len": NoLen(),
    "loader-raises": _raising_loader(),
    "loader-bare": DataLoader(Bare(), batch_size=2),
    "not-data": "train.npz",
    "three-tuple": (X, Y, Y),
    "none-pair": (None, None),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_as_array_data_refuses_bad_data_with_data_error(case):
    with pytest.raises(DataError):
        as_array_data(BAD_DATA[case], "train")


@pytest.mark.parametrize("case", ["dataset-raises", "huge-label", "complex-x", "string-label", "dataset-bare-tensors"])
def test_build_refuses_bad_data_before_training(tmp_path, case):
    with pytest.raises(DataError):
        edgekd.build(tiny_model(), train=BAD_DATA[case], out_dir=tmp_path / "out", epochs=1, search=False,
                     progress=False)


@pytest.mark.parametrize("labels", [np.zeros(48, np.int64), np.full(48, 2)])
def test_build_refuses_single_class_data(tmp_path, labels):
    x, _ = tiny_data()
    with pytest.raises(DataError):
        edgekd.build(tiny_model(), train=(x, labels), out_dir=tmp_path / "out", epochs=1, search=False,
                     progress=False)
    assert not (tmp_path / "out").exists()


# model files that are recorded (hashes match) but corrupt --------------------------------------------------------

def _corrupt(folder, name: str, data: bytes) -> None:
    (folder / name).write_bytes(data)
    Artifact.read(folder).save()  # hashes re-recorded: only the runtime can tell


@pytest.mark.parametrize("kind,make", [
    ("empty", lambda b: b""),
    ("truncated", lambda b: b[: len(b) // 3]),
    ("garbage", lambda b: bytes(range(256)) * 8),
    ("json", lambda b: b'{"not": "onnx"}'),
    ("zeros", lambda b: bytes(len(b))),
])
def test_load_refuses_corrupt_model_file_with_artifact_load_error(compiled, kind, make):
    artifact, _ = compiled
    _corrupt(artifact.folder, "model.onnx", make((artifact.folder / "model.onnx").read_bytes()))
    with pytest.raises(ArtifactLoadError):
        edgekd.load(artifact.folder)


@pytest.mark.parametrize("threads", [0, -1, 10**20, 1.5, True, "2"])
def test_load_refuses_bad_thread_count(compiled, threads):
    artifact, _ = compiled
    with pytest.raises(ConfigError):
        edgekd.load(artifact.folder, threads=threads)


# calibration caches ----------------------------------------------------------------------------------------------

def _cache(ranges) -> dict:
    return {"schema": "edgekd.calibration/1", "method": "minmax", "symmetric": False, "samples": 8, "params": {},
            "ranges": ranges}


BAD_CACHES = {
    "list": [1, 2, 3],
    "null": None,
    "string": "ranges",
    "number": 3,
    "no-schema": {"ranges": {}},
    "wrong-schema": {**_cache({}), "schema": "other/1"},
    "ranges-list": _cache([[0, 1]]),
    "ranges-null": _cache(None),
    "range-nested": _cache({"x": [[0, 1], [2, 3]]}),
    "range-short": _cache({"x": [0]}),
    "range-strings": _cache({"x": ["low", "high"]}),
    "range-nan": _cache({"x": [math.nan, 1.0]}),
    "range-inf": _cache({"x": [0.0, math.inf]}),
    "range-inverted": _cache({"x": [1.0, -1.0]}),
    "missing-method": {k: v for k, v in _cache({}).items() if k != "method"},
}


@pytest.mark.parametrize("case", sorted(BAD_CACHES))
def test_read_cache_refuses_malformed_cache(tmp_path, case):
    path = tmp_path / "calibration.cache.json"
    path.write_text(json.dumps(BAD_CACHES[case]))
    with pytest.raises(ConfigError):
        read_cache(path)


@pytest.mark.parametrize("text", [b"", b"{", b"\xff\xfe\x00", b"[" * 100_000])
def test_read_cache_refuses_unparsable_file(tmp_path, text):
    path = tmp_path / "calibration.cache.json"
    path.write_bytes(text)
    with pytest.raises(ConfigError):
        read_cache(path)


# checkpoints -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["empty", "garbage", "json", "foreign-torch", "truncated"])
def test_load_checkpoint_refuses_damaged_file(tmp_path, kind):
    path = tmp_path / "distill.ckpt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "json":
        path.write_text('{"format": "edgekd.ckpt/1"}')
    elif kind == "foreign-torch":
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        torch.save({"format": "edgekd.ckpt/1", "fingerprint": "f", "history": "[]", "x": torch.zeros(1000)}, path)
        path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError):
        load_checkpoint(path, "f")
