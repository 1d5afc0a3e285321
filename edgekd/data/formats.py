"""Readers for data on disk: MNIST-format IDX files and image folders (decoded with Pillow)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from edgekd.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into an array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DataError(f"{path}: cannot read IDX file: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim :]
    if len(body) != expected:
        raise DataError(f"{path}: IDX header promises {expected} bytes of data, file has {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(dims)


def find_idx_pair(root: str | Path, split: str) -> tuple[Path, Path]:
    """Locate ``{split}-images-idx3-ubyte[.gz]`` and its labels file under ``root``."""
    root = Path(root)
    found = []
    for kind in ("images-idx3", "labels-idx1"):
        stem = f"{split}-{kind}-ubyte"
        candidates = [root / stem, root / f"{stem}.gz"]
        match = next((c for c in candidates if c.exists()), None)
        if match is None:
            raise DataError(f"{root}: missing {stem} (or {stem}.gz)")
        found.append(match)
    return found[0], found[1]


def load_idx_dataset(root: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style IDX pair → uint8 images (N, 1, H, W) and int64 labels."""
    images_path, labels_path = find_idx_pair(root, split)
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected 3-D images (N, H, W), got {images.shape}")
    if len(images) != len(labels):
        raise DataError(f"{root}: {len(images)} images but {len(labels)} labels for split {split!r}")
    return images[:, None].astype(np.uint8), labels.astype(np.int64)


def load_image_folder(root: str | Path, size: tuple[int, int], color: str = "rgb", classes=None):
    """``root/<class>/<image>`` → uint8 (N, C, H, W), labels, class names (sorted).

    ``classes``: the label order of another folder (a validation folder takes its train folder's);
    a sub-folder not among them is an error, a class without a sub-folder simply has no images.
    """
    # heavy optional package: imported on first use
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    found = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not found:
        raise DataError(f"{root}: no class sub-folders (expected root/<class>/<image>)")
    if classes is not None:
        unknown = [c for c in found if c not in classes]
        if unknown:
            raise DataError(f"{root}: class folder(s) {', '.join(unknown)} not among the training classes "
                            f"({', '.join(classes)})")
    classes = list(classes) if classes is not None else found
    mode = "L" if color == "gray" else "RGB"
    images, labels = [], []
    for index, name in enumerate(classes):
        if not (root / name).is_dir():
            continue
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as img:
                    img = img.convert(mode).resize((size[1], size[0]), Image.Resampling.BILINEAR)
                    arr = np.asarray(img, dtype=np.uint8)
            except (UnidentifiedImageError, OSError) as exc:
                raise DataError(f"{file}: cannot decode image: {exc}") from exc
            images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
            labels.append(index)
    if not images:
        raise DataError(f"{root}: no images with suffixes {sorted(IMAGE_SUFFIXES)}")
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes
