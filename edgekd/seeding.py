"""Seeded, deterministic torch for the duration of a build."""

from __future__ import annotations

import torch


class deterministic:  # noqa: N801 - used as a context manager, reads as a phrase
    """Seeded, deterministic torch for the duration of a build; restores the caller's settings."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self._before = (torch.are_deterministic_algorithms_enabled(),
                        torch.is_deterministic_algorithms_warn_only_enabled())
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(self.seed)
        return self

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self._before[0], warn_only=self._before[1])
        return False
