"""Accept what users have — (X, y) arrays, a torch Dataset, a DataLoader — as tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edgekd.errors import DataError


@dataclass(frozen=True)
class ArrayData:
    """Inputs ``x`` (N, C, H, W) float32 and integer labels ``y`` (N,), held in memory."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index) -> "ArrayData":
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return ArrayData(self.x[index], self.y[index])

    def numpy(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x.numpy(), self.y.numpy()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(self.y.max().item()) + 1 if len(self.y) else 0


def as_array_data(data, name: str = "data") -> ArrayData:
    """Turn ``(X, y)``, a Dataset or a DataLoader into :class:`ArrayData`.

    Raises:
        DataError: naming ``name`` and what was expected.
    """
    if isinstance(data, ArrayData):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = data
        return _check(torch.as_tensor(np.asarray(x, dtype=np.float32)), _labels(y, name), name)
    if isinstance(data, DataLoader):
        xs, ys = [], []
        for batch in data:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise DataError(f"{name}: a DataLoader must yield (inputs, labels) batches")
            xs.append(torch.as_tensor(batch[0]).float())
            ys.append(torch.as_tensor(batch[1]))
        if not xs:
            raise DataError(f"{name}: the DataLoader yielded no batches")
        return _check(torch.cat(xs), _labels(torch.cat(ys), name), name)
    if isinstance(data, Dataset):
        try:
            items = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
        except TypeError as exc:
            raise DataError(f"{name}: a Dataset must support len() and indexing") from exc
        if not items:
            raise DataError(f"{name}: the Dataset is empty")
        x = torch.stack([torch.as_tensor(item[0]).float() for item in items])
        y = torch.as_tensor([int(item[1]) for item in items])
        return _check(x, _labels(y, name), name)
    raise DataError(
        f"{name}: expected (X, y) numpy arrays, a torch Dataset or a DataLoader, got {type(data).__name__}"
    )


def _labels(y, name: str) -> torch.Tensor:
    arr = np.asarray(y.numpy() if isinstance(y, torch.Tensor) else y)
    if arr.ndim != 1:
        raise DataError(f"{name}: labels must be a 1-D array of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise DataError(f"{name}: labels must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise DataError(f"{name}: labels must be >= 0, found {arr.min()}")
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
