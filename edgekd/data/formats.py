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


def image_folder_files(root: str | Path, classes=None) -> tuple[list[Path], np.ndarray, list[str]]:
    """``root/<class>/<image>`` → image files, their labels, class names (sorted).

    ``classes``: the label order of another folder (a validation folder takes its train folder's);
    a sub-folder not among them is an error, a class without a sub-folder simply has no images.
    """
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
    files, labels = [], []
    for index, name in enumerate(classes):
        if not (root / name).is_dir():
            continue
        found_files = _image_files(root / name)
        files += found_files
        labels += [index] * len(found_files)
    if not files:
        raise DataError(f"{root}: no images with suffixes {sorted(IMAGE_SUFFIXES)}")
    return files, np.asarray(labels, dtype=np.int64), classes


def load_image_folder(root: str | Path, size: tuple[int, int], color: str = "rgb", classes=None):
    """``root/<class>/<image>`` → uint8 (N, C, H, W), labels, class names (sorted); ``classes`` as in
    :func:`image_folder_files`."""
    files, labels, classes = image_folder_files(root, classes)
    return np.stack([read_image(file, size, color) for file in files]), labels, classes


def is_unlabeled_folder(root: str | Path) -> bool:
    """True for a folder of images without class sub-folders: its labels must come from a teacher."""
    root = Path(root)
    return root.is_dir() and not any(p.is_dir() for p in root.iterdir()) and bool(_image_files(root))


def unlabeled_files(root: str | Path) -> list[Path]:
    """``root/<image>`` (no class sub-folders) in file-name order."""
    root = Path(root)
    files = _image_files(root)
    if not files:
        raise DataError(f"{root}: no images with suffixes {sorted(IMAGE_SUFFIXES)}")
    return files


def load_unlabeled_folder(root: str | Path, size: tuple[int, int], color: str = "rgb") -> np.ndarray:
    """``root/<image>`` (no class sub-folders) → uint8 (N, C, H, W), in file-name order."""
    return np.stack([read_image(file, size, color) for file in unlabeled_files(root)])


def _image_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def read_image(file: Path, size: tuple[int, int], color: str) -> np.ndarray:
    """One image file → uint8 (C, H, W), converted and resized with Pillow."""
    # heavy optional package: imported on first use
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as img:
            img = img.convert("L" if color == "gray" else "RGB").resize((size[1], size[0]),
                                                                         Image.Resampling.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{file}: cannot decode image: {exc}") from exc
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
