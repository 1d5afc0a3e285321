"""Seeded samples of the two registry search spaces, for fitting and for held-out benchmarks.

The choices mirror the search spaces of the student search: ResNet-style depth in {1, 3, 5, 7}
per stage with width multipliers, MobileNetV2-style expansion, kernel 3/5/7, width and depth.
"""

from __future__ import annotations

import numpy as np

from edgekd.hw.features import arch_key

WIDTH_MULTS = (0.5, 0.75, 1.0, 1.5, 2.0)
SPACES = {
    "resnet": {"base_widths": (16, 32, 64), "depths": (1, 3, 5, 7)},
    "mobilenetv2": {"base_widths": (16, 24, 32), "depths": (1, 2, 3, 4), "expansions": (1, 3, 4, 6),
                    "kernels": (3, 5, 7)},
}


def sample_arch(space: str, rng: np.random.Generator) -> dict:
    """One random ``card_of(model).arch`` dict from ``space`` (per-stage widths, depths, ...)."""
    spec = SPACES[space]
    n = len(spec["base_widths"])
    widths = tuple(max(4, int(round(w * rng.choice(WIDTH_MULTS)))) for w in spec["base_widths"])
    depths = tuple(int(d) for d in rng.choice(spec["depths"], n))
    if space == "resnet":
        return {"name": "resnet", "depths": depths, "widths": widths}
    return {"name": "mobilenetv2", "widths": widths, "depths": depths,
            "expansions": tuple(int(e) for e in rng.choice(spec["expansions"], n)),
            "kernels": tuple(int(k) for k in rng.choice(spec["kernels"], n))}


def sample_archs(n_per_space: int, seed: int, exclude=(), spaces=tuple(SPACES)) -> list[dict]:
    """``n_per_space`` distinct architectures from each space, interleaved, none in ``exclude`` (arch keys)."""
    rng = np.random.default_rng(seed)
    seen = set(exclude)
    picked: dict[str, list] = {s: [] for s in spaces}
    for space in spaces:
        tries = 0
        while len(picked[space]) < n_per_space and tries < 100 * n_per_space:
            tries += 1
            arch = sample_arch(space, rng)
            if arch_key(arch) not in seen:
                seen.add(arch_key(arch))
                picked[space].append(arch)
    out = []
    for i in range(n_per_space):
        out += [picked[s][i] for s in spaces if i < len(picked[s])]
    return out
