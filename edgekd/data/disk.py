"""Image folders larger than memory: decoded once, by DataLoader workers, into a float32 ``.npy`` in the
build's cache folder and mapped from there.

A mapped tensor is an ordinary ``torch.Tensor`` whose pages the operating system reads from the file as
training draws batches and evicts under memory pressure, so every consumer of ``ArrayData.x`` (batch
indexing, slicing, ``.numpy()``) works unchanged while the process holds only what it touches. The
file is keyed by the images (names, sizes, modification times) and the preprocessing, so a rebuild
or ``--resume`` maps it again instead of decoding; a killed decode leaves only a ``.partial`` file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from edgekd.data.formats import read_image
from edgekd.errors import DataError

log = logging.getLogger(__name__)

IN_MEMORY_MB = 1024.0  # normalized pixels beyond this are mapped from disk; EDGEKD_IN_MEMORY_MB overrides
DECODE_BATCH = 64
ROWS_PER_WRITE = 256  # rows copied at a time when a split writes its own file (bounded memory)


def in_memory_limit_mb() -> float:
    raw = os.environ.get("EDGEKD_IN_MEMORY_MB")
    if raw is None:
        return IN_MEMORY_MB
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise DataError(f"EDGEKD_IN_MEMORY_MB={raw!r}: expected a number of megabytes") from None


class _ImageFiles(Dataset):
    """One decoded, resized uint8 (C, H, W) image per item; a file that cannot be decoded becomes its
    error text, raised as one DataError by the caller (a worker's exception would arrive as a traceback)."""

    def __init__(self, files: list[Path], size: tuple[int, int], color: str):
        self.files, self.size, self.color = files, size, color

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        try:
            return read_image(self.files[i], self.size, self.color)
        except DataError as exc:
            return str(exc)


def _batches(files: list[Path], size, color: str, workers: int | None, desc: str):
    """uint8 (B, C, H, W) batches of ``files`` in order, decoded by ``workers`` DataLoader processes."""
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = 0 if len(files) < 4 * DECODE_BATCH or cpus < 2 else min(4, cpus)
    loader = DataLoader(_ImageFiles(files, tuple(size), color), batch_size=DECODE_BATCH, num_workers=workers,
                        collate_fn=list)
    with tqdm(total=len(files), desc=desc, unit="img", disable=len(files) < 1000, mininterval=1.0) as bar:
        for items in loader:
            failed = next((item for item in items if isinstance(item, str)), None)
            if failed is not None:
                raise DataError(failed)
            bar.update(len(items))
            yield np.stack(items)


def decode_images(files: list[Path], size, color: str, spec, cache_dir: Path | None = None,
                  workers: int | None = None) -> tuple[torch.Tensor, Path | None]:
    """Normalized float32 (N, C, H, W) of ``files`` and the ``.npy`` it is mapped from (None: in memory).

    In memory unless ``cache_dir`` is given and the pixels exceed :func:`in_memory_limit_mb`.
    """
    channels = 1 if color == "gray" else 3
    shape = (len(files), channels, *size)
    megabytes = float(np.prod(shape)) * 4 / 2**20
    if cache_dir is None or megabytes <= in_memory_limit_mb():
        x = np.empty(shape, np.float32)  # filled in place: no second copy of the dataset
        _fill(x, _batches(files, size, color, workers, "decode"), spec)
        return torch.from_numpy(x), None
    path = Path(cache_dir) / f"images-{_key(files, size, color, spec)}.npy"
    if not path.is_file():
        log.info("decoding %d images (%.0f MB as float32) into %s, read from there while training",
                 len(files), megabytes, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.stem + ".partial.npy")
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=shape)
        _fill(out, _batches(files, size, color, workers, "decode to disk"), spec)
        out.flush()
        del out
        partial.replace(path)
    return mapped(path), path


def _fill(out: np.ndarray, batches, spec) -> None:
    row = 0
    for batch in batches:
        out[row : row + len(batch)] = spec.normalize(batch)
        row += len(batch)


def mapped(path: Path) -> torch.Tensor:
    """The float32 array in ``path`` as a tensor over a copy-on-write mapping: reads come from the file,
    and nothing written to the tensor ever reaches it."""
    return torch.from_numpy(np.load(path, mmap_mode="c"))


def write_rows(x: torch.Tensor, index: np.ndarray, source: Path) -> tuple[torch.Tensor, Path]:
    """Rows ``index`` of the mapped ``x`` as their own mapped file beside ``source`` (a split of a folder
    too big for memory), copied a few rows at a time."""
    index = np.asarray(index, dtype=np.int64)
    digest = hashlib.sha256(index.tobytes()).hexdigest()[:12]
    path = source.with_name(f"{source.stem.split('-rows-')[0]}-rows-{digest}.npy")
    if not path.is_file():
        partial = path.with_name(path.stem + ".partial.npy")
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(len(index), *x.shape[1:]))
        rows = x.numpy()
        for i in range(0, len(index), ROWS_PER_WRITE):
            out[i : i + ROWS_PER_WRITE] = rows[index[i : i + ROWS_PER_WRITE]]
        out.flush()
        del out
        partial.replace(path)
    return mapped(path), path


def _key(files: list[Path], size, color: str, spec) -> str:
    h = hashlib.sha256(repr((tuple(size), color, tuple(spec.mean), tuple(spec.std), spec.scale,
                             spec.invert)).encode())
    for file in files:
        stat = file.stat()
        h.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]
