"""Shared fixtures: small real data (scikit-learn digits) and a small trained teacher."""

from __future__ import annotations

import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Teachers trained by tests are cached in a per-session folder, never in ~/.cache."""
    os.environ.setdefault("EDGEKD_CACHE_DIR", str(tmp_path_factory.mktemp("edgekd-cache")))
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn digits (8×8, 10 classes) as (train, val) ArrayData, stratified."""
    from edgekd.data import load_dataset, split

    bundle = load_dataset("digits")
    val, train = split(bundle.train, 360, seed=0)
    return train, val, bundle.spec


@pytest.fixture(scope="session")
def digits_teacher(digits):
    """A TeacherCNN trained for a few epochs on digits (about 97% val accuracy)."""
    from edgekd.distill import TrainConfig, fit
    from edgekd.distill.losses import CE
    from edgekd.models import TeacherCNN

    train, val, _ = digits
    torch.manual_seed(0)
    teacher = TeacherCNN((1, 8, 8), 10, width=16)
    fit(teacher, train, None, CE(), None, TrainConfig(epochs=8, lr=5e-3, progress=False))
    return teacher.eval()
