"""Stratified, seeded splits."""

from __future__ import annotations

import numpy as np

from edgekd.data.sources import ArrayData


def stratified_indices(labels: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``size`` indices with class proportions kept; return (picked, rest), both sorted."""
    labels = np.asarray(labels)
    size = int(min(max(size, 0), len(labels)))
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.floor(counts / len(labels) * size).astype(int)
    # hand out what flooring left over to the largest remainders, deterministically
    remainder = counts / len(labels) * size - quota
    for i in np.argsort(-remainder, kind="stable")[: size - quota.sum()]:
        quota[i] += 1
    picked = []
    for cls, q in zip(classes, quota):
        members = np.flatnonzero(labels == cls)
        picked.append(rng.permutation(members)[:q])
    picked = np.sort(np.concatenate(picked)) if picked else np.array([], dtype=int)
    rest = np.setdiff1d(np.arange(len(labels)), picked)
    return picked, rest


def split(data: ArrayData, size: int, seed: int) -> tuple[ArrayData, ArrayData]:
    """Split off a stratified subset of ``size`` samples: (subset, remainder)."""
    picked, rest = stratified_indices(data.y.numpy(), size, seed)
    return data.subset(picked), data.subset(rest)
