"""Accept what users have — (X, y) arrays, a torch Dataset, a DataLoader — as tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edgekd.data.disk import write_rows
from edgekd.errors import DataError, EdgeKDError


@dataclass(frozen=True)
class ArrayData:
    """Inputs ``x`` (N, C, H, W) float32 and integer labels ``y`` (N,).

    ``disk``: the ``.npy`` file ``x`` is mapped from (an image folder too big for memory,
    :mod:`edgekd.data.disk`); None when ``x`` is held in memory.
    """

    x: torch.Tensor
    y: torch.Tensor
    disk: Path | None = None

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index) -> "ArrayData":
        """The samples ``index``; a mapped dataset's subset gets its own mapped file (no copy in memory)."""
        if self.disk is not None:
            index = np.asarray(index, dtype=np.int64)
            x, path = write_rows(self.x, index, self.disk)
            return ArrayData(x, self.y[torch.from_numpy(index)], path)
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return ArrayData(self.x[index], self.y[index])

    def with_labels(self, y: torch.Tensor) -> "ArrayData":
        """The same inputs (mapped ones stay mapped) with other labels."""
        return ArrayData(self.x, y, self.disk)

    def numpy(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x.numpy(), self.y.numpy()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self.y.max().item()) + 1 if len(self.y) else 0


def update_sha256(h, x: torch.Tensor, rows: int = 256) -> None:
    """Feed ``x``'s bytes to ``h`` a few rows at a time: the digest of the whole, without a second copy of
    a dataset mapped from disk."""
    arr = x.numpy()
    for i in range(0, len(arr), rows):
        h.update(np.ascontiguousarray(arr[i : i + rows]).tobytes())


def as_array_data(data, name: str = "data") -> ArrayData:
    """Turn ``(X, y)``, a Dataset or a DataLoader into :class:`ArrayData`.

    Raises:
        DataError: naming ``name`` and what was expected.
    """
    if isinstance(data, ArrayData):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        return _check(_inputs(x, name), _labels(y, name), name)
    if isinstance(data, DataLoader):
        xs, ys = [], []
        for batch in _guarded(iter(data), name, "the DataLoader"):
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise DataError(f"{name}: a DataLoader must yield (inputs, labels) batches")
            xs.append(_inputs(batch[0], name))
            ys.append(_labels(batch[1], name))
        if not xs:
            raise DataError(f"{name}: the DataLoader yielded no batches")
        try:
            return _check(torch.cat(xs), torch.cat(ys), name)
        except RuntimeError as exc:  # batches of different sample shapes
            raise DataError(f"{name}: the DataLoader's batches do not stack: {exc}") from None
    if isinstance(data, Dataset):
        try:
            n = len(data)  # type: ignore[arg-type]
        except TypeError as exc:
            raise DataError(f"{name}: a Dataset must support len() and indexing") from exc
        items = list(_guarded((data[i] for i in range(n)), name, "the Dataset"))
        if not items:
            raise DataError(f"{name}: the Dataset is empty")
        if not all(isinstance(item, (tuple, list)) and len(item) >= 2 for item in items):
            raise DataError(f"{name}: a Dataset must return (input, label) pairs, got {type(items[0]).__name__}")
        try:
            x = torch.stack([_inputs(item[0], name) for item in items])
        except RuntimeError as exc:
            raise DataError(f"{name}: the Dataset's inputs differ in shape: {exc}") from None
        return _check(x, _labels([_scalar(item[1], name) for item in items], name), name)
    raise DataError(
        f"{name}: expected (X, y) numpy arrays, a torch Dataset or a DataLoader, got {type(data).__name__}"
    )


MAX_CLASSES = 100_000  # a label beyond this is a data bug, and would allocate a (classes,)-wide head


def _guarded(items, name: str, what: str):
    """Yield from ``items``; whatever the user's code raises becomes one DataError naming ``name``."""
    i = 0
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except EdgeKDError:
            raise
        except Exception as exc:  # noqa: BLE001 - user code: any exception is bad data
            raise DataError(f"{name}: {what} raised {type(exc).__name__} at item {i}: {exc}") from None
        yield item
        i += 1


def _inputs(x, name: str) -> torch.Tensor:
    """Real-valued inputs as a float32 tensor; strings, objects and complex numbers are a DataError."""
    try:
        arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise DataError(f"{name}: inputs are not a rectangular array of numbers: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{name}: inputs must be real numbers, got dtype {arr.dtype}")
    return torch.as_tensor(arr.astype(np.float32, copy=False))


def _scalar(label, name: str):
    try:
        return np.asarray(label.detach().cpu().numpy() if isinstance(label, torch.Tensor) else label).item()
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name}: each label must be one class index, got {label!r:.60}") from exc


def _labels(y, name: str) -> torch.Tensor:
    try:
        arr = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name}: labels are not a 1-D array of class indices: {exc}") from None
    if arr.size and arr.dtype.kind not in "biuf":
        raise DataError(f"{name}: labels must be integers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise DataError(f"{name}: labels must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise DataError(f"{name}: labels must be integers, got dtype {arr.dtype}")
    if arr.size and not np.isfinite(arr.astype(np.float64)).all():
        raise DataError(f"{name}: labels must be finite integers")
    if arr.size and (arr.max() >= MAX_CLASSES or arr.min() < 0):
        raise DataError(f"{name}: labels must be class indices 0 to {MAX_CLASSES - 1}, found {arr.min()} to {arr.max()}")
    arr = arr.astype(np.int64)
    return torch.as_tensor(arr)


def _check(x: torch.Tensor, y: torch.Tensor, name: str) -> ArrayData:
    if x.ndim != 4:
        raise DataError(f"{name}: inputs must be float32 NCHW (4-D), got shape {tuple(x.shape)}")
    if len(x) != len(y):
        raise DataError(f"{name}: {len(x)} inputs but {len(y)} labels")
    if len(x) == 0:
        raise DataError(f"{name}: no samples")
    if not torch.isfinite(x).all():
        raise DataError(f"{name}: inputs contain NaN or infinite values")
    return ArrayData(x.contiguous(), y)
