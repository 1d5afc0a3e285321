"""Stage 1, prepare data: the built-in dataset, an image folder, or the user's arrays → :class:`Data`."""

from __future__ import annotations

import hashlib

from edgekd.data.builtin import load_train_val
from edgekd.data.sources import ArrayData, as_array_data, update_sha256
from edgekd.data.spec import identity_spec
from edgekd.data.splits import split
from edgekd.errors import DataError
from edgekd.stages.context import Data


def prepare_data(train=None, val=None, dataset=None, spec=None, val_fraction: float = 0.2, seed: int = 0, *,
                 data_dir=None, val_dir=None, image_size=None, channels=None, cache_dir=None) -> Data:
    """The build's data; without ``val``, a stratified, seeded ``val_fraction`` of ``train`` is held out.
    ``cache_dir``: where an image folder too big for memory is decoded to and read from."""
    if train is None:
        if val is not None:
            raise DataError("val was given without train; pass both, or neither for the built-in dataset")
        bundle, train_data, val_data = load_train_val(dataset, data_dir, val_dir, image_size, channels,
                                                      val_fraction=val_fraction, seed=seed, spec=spec,
                                                      cache_dir=cache_dir)
        builtin = bundle.name != "folder" and not bundle.name.startswith("folder:")
        return Data(bundle.name, train_data, val_data, bundle.spec, True, builtin, bundle.labels_from)
    if dataset is not None or data_dir is not None:
        raise DataError("pass either dataset=... / data_dir=... or train=..., not both")
    train_data = as_array_data(train, "train")
    if val is None:
        val_data, train_data = split(train_data, max(1, int(len(train_data) * val_fraction)), seed)
    else:
        val_data = as_array_data(val, "val")
    if val_data.input_shape != train_data.input_shape:
        raise DataError(f"val inputs have shape {val_data.input_shape} but train inputs {train_data.input_shape}")
    classes = max(train_data.num_classes, val_data.num_classes)
    spec = spec or identity_spec(train_data.input_shape, classes)
    if tuple(spec.input_shape) != train_data.input_shape:
        raise DataError(f"spec.input_shape {tuple(spec.input_shape)} does not match the data's "
                        f"{train_data.input_shape}")
    return Data(f"user-{data_digest(train_data)}", train_data, val_data, spec, False, False)


def data_digest(data: ArrayData) -> str:
    """A content key for user data, so a default teacher trained on it is cached per dataset."""
    h = hashlib.sha256()
    update_sha256(h, data.x)
    h.update(data.y.numpy().tobytes())
    return h.hexdigest()[:12]
