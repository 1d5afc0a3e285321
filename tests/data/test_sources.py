import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from edgekd.data import as_array_data, split, stratified_indices
from edgekd.errors import DataError


def _arrays(n=20):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 1, 8, 8)).astype(np.float32), np.arange(n) % 4


def test_as_array_data_accepts_arrays_dataset_and_loader_alike():
    x, y = _arrays()
    ds = TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    forms = [(x, y), ds, DataLoader(ds, batch_size=6)]
    datas = [as_array_data(f) for f in forms]
    for d in datas:
        assert torch.equal(d.x, datas[0].x) and torch.equal(d.y, datas[0].y)
    assert datas[0].input_shape == (1, 8, 8) and datas[0].num_classes == 4


@pytest.mark.parametrize("bad, message", [
    ((np.zeros((4, 8, 8), np.float32), np.zeros(4)), "4-D"),
    ((np.zeros((4, 1, 8, 8), np.float32), np.zeros(3)), "4 inputs but 3 labels"),
    ((np.zeros((4, 1, 8, 8), np.float32), np.array([0, 1, 0.5, 2])), "integers"),
    ((np.full((2, 1, 2, 2), np.nan, np.float32), np.zeros(2)), "NaN"),
    ("nonsense", "expected"),
])
def test_as_array_data_rejects_bad_input_with_a_named_reason(bad, message):
    with pytest.raises(DataError, match=message):
        as_array_data(bad, "train")


def test_stratified_indices_keep_class_proportions_and_are_seeded():
    labels = np.repeat(np.arange(5), [100, 50, 50, 20, 30])
    picked, rest = stratified_indices(labels, 50, seed=3)
    assert len(picked) == 50 and len(rest) == 200 and not set(picked) & set(rest)
    assert np.bincount(labels[picked]).tolist() == [20, 10, 10, 4, 6]
    again, _ = stratified_indices(labels, 50, seed=3)
    other, _ = stratified_indices(labels, 50, seed=4)
    assert np.array_equal(picked, again) and not np.array_equal(picked, other)


def test_split_partitions_the_data():
    x, y = _arrays(40)
    sub, rest = split(as_array_data((x, y)), 10, seed=0)
    assert len(sub) == 10 and len(rest) == 30
    assert sorted(np.concatenate([sub.y.numpy(), rest.y.numpy()]).tolist()) == sorted(y.tolist())
