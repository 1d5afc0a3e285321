"""Image folders too big for memory: decoded once into the build's cache folder and read from there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.data.disk import decode_images
from edgekd.data.formats import unlabeled_files
from edgekd.data.spec import PreprocessSpec
from edgekd.errors import DataError
from edgekd.stages import prepare_data
from tests.test_cli_build_folder import write_png_folder
from tests.test_label_free import unlabeled_copy


def _mapped_from(x: torch.Tensor, path: Path) -> bool:
    """Whether ``x``'s memory is a mapping of ``path`` (Linux /proc/self/maps), i.e. not a copy in memory."""
    ptr = x.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        lo, hi = (int(v, 16) for v in fields[0].split("-"))
        if lo <= ptr < hi:
            return len(fields) > 5 and fields[5] == str(path.resolve())
    return False


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_png_folder(tmp_path_factory.mktemp("disk") / "labelled", per_class=30)


def test_a_folder_over_the_memory_limit_is_read_from_its_cache_file_with_the_same_values(folder, tmp_path,
                                                                                         monkeypatch):
    args = (None, None, None, None, 0.2, 0)
    in_memory = prepare_data(*args, data_dir=folder, image_size=16, channels=1, cache_dir=tmp_path / "cache")
    assert in_memory.train.disk is None and not (tmp_path / "cache").exists()  # small: held in memory
    monkeypatch.setenv("EDGEKD_IN_MEMORY_MB", "0")
    mapped = prepare_data(*args, data_dir=folder, image_size=16, channels=1, cache_dir=tmp_path / "cache")
    for part in ("train", "val"):  # the held-out split gets its own file too: no copy in memory
        got, expected = getattr(mapped, part), getattr(in_memory, part)
        assert got.disk is not None and got.disk.parent == tmp_path / "cache" and _mapped_from(got.x, got.disk)
        assert torch.equal(got.x, expected.x) and torch.equal(got.y, expected.y)
    assert not list((tmp_path / "cache").glob("*.partial.npy"))
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.npy")}
    again = prepare_data(*args, data_dir=folder, image_size=16, channels=1, cache_dir=tmp_path / "cache")
    assert torch.equal(again.train.x, mapped.train.x)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.npy")} == stamps  # reused, not decoded


def test_workers_decode_in_file_order_and_a_broken_image_is_one_data_error(folder, tmp_path):
    unlabeled = unlabeled_copy(folder, tmp_path / "flat")
    files = unlabeled_files(unlabeled)
    spec = PreprocessSpec(input_shape=(1, 16, 16), color="gray", mean=(0.5,), std=(0.5,), labels=())
    serial, _ = decode_images(files, (16, 16), "gray", spec, workers=0)
    parallel, path = decode_images(files, (16, 16), "gray", spec, tmp_path / "cache", workers=2)
    assert path is None and torch.equal(serial, parallel)  # under the limit: in memory
    (unlabeled / "zz-broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="zz-broken.png: cannot decode image") as info:
        decode_images(unlabeled_files(unlabeled), (16, 16), "gray", spec, workers=2)
    assert "\n" not in str(info.value)  # one line, not a worker's traceback


def test_a_label_free_build_from_disk_ships_the_same_artifact_as_from_memory(folder, tmp_path, monkeypatch):
    import edgekd
    from edgekd.distill.losses import CE
    from edgekd.distill.trainer import TrainConfig, fit
    from edgekd.models import TeacherCNN

    data = prepare_data(None, None, None, None, 0.2, 0, data_dir=folder, image_size=16, channels=1)
    torch.manual_seed(0)
    teacher = TeacherCNN((1, 16, 16), 3, width=8)
    fit(teacher, data.train, None, CE(), None, TrainConfig(epochs=5, batch_size=32, lr=3e-3, progress=False))
    unlabeled = unlabeled_copy(folder, tmp_path / "flat")
    spec = data.spec.model_copy(update={"labels": ()})
    reports = {}
    for limit in ("1024", "0"):
        monkeypatch.setenv("EDGEKD_IN_MEMORY_MB", limit)
        out = tmp_path / f"out-{limit}"
        edgekd.build(teacher.eval(), data_dir=unlabeled, spec=spec, out_dir=out, epochs=3, search=False,
                     progress=False, latency_runs=5)
        reports[limit] = json.loads((out / "x86-cpu-onnxruntime" / "report.json").read_text())
        assert bool(list((out / "cache").glob("images-*.npy"))) == (limit == "0")
    memory, disk = reports["1024"], reports["0"]
    assert disk["artifact"]["sha256"] == memory["artifact"]["sha256"]  # same images, same training, same bytes
    assert disk["artifact"]["accuracy"] == memory["artifact"]["accuracy"]
    assert np.isclose(disk["teacher"]["accuracy"], 1.0)  # its own labels
