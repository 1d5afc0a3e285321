"""Datasets, the preprocessing spec and splits."""

from edgekd.data.builtin import DEFAULT_DATASET, DatasetBundle, list_datasets, load_dataset, register_dataset
from edgekd.data.formats import load_idx_dataset, load_image_folder, read_idx
from edgekd.data.sources import ArrayData, as_array_data
from edgekd.data.spec import SPEC_FILENAME, PreprocessSpec, identity_spec
from edgekd.data.splits import split, stratified_indices

__all__ = [
    "ArrayData", "DEFAULT_DATASET", "DatasetBundle", "PreprocessSpec", "SPEC_FILENAME", "as_array_data",
    "identity_spec", "list_datasets", "load_dataset", "load_idx_dataset", "load_image_folder", "read_idx",
    "register_dataset", "split", "stratified_indices",
]
