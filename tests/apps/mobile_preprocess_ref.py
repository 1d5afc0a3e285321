"""The mobile apps' preprocessing, in Python, step for step as Preprocess.kt and Preprocess.swift do it.

The apps decode a photo to straight RGBA8 pixels, then (1) take Pillow's luma for gray models
or the R, G, B planes for rgb ones, (2) resize each plane with Pillow's BILINEAR resampler
(separable, antialiased when shrinking, 22-bit fixed point, Pillow 13's pass order), (3) scale,
invert and normalize in float32. Integer and float32 steps are kept as the apps write them, so
this equals ``PreprocessSpec.from_image`` exactly only if the apps' code does too.
"""

from __future__ import annotations

import numpy as np

PRECISION_BITS = 22  # Pillow's Resample.c: 32 - 8 - 2


def luma(rgba: np.ndarray) -> list[int]:
    """ITU-R 601-2 luma with Pillow's 16-bit fixed-point weights (Convert.c ``L24``)."""
    r, g, b = (rgba[..., i].astype(np.int64).ravel().tolist() for i in range(3))
    return [(ri * 19595 + gi * 38470 + bi * 7471 + 0x8000) >> 16 for ri, gi, bi in zip(r, g, b)]


def coefficients(in_size: int, out_size: int) -> tuple[list[int], list[int], list[list[int]]]:
    """Per output index: first source index, tap count, fixed-point weights (Resample.c precompute_coeffs)."""
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = 1.0 * filter_scale  # the bilinear (triangle) filter has support 1
    ss = 1.0 / filter_scale
    starts, counts, weights = [], [], []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        k = [max(0.0, 1.0 - abs((x + xmin - center + 0.5) * ss)) for x in range(xmax)]
        total = sum_in_order(k)
        k = [w / total for w in k] if total != 0.0 else k
        fixed = [int(-0.5 + w * (1 << PRECISION_BITS)) if w < 0 else int(0.5 + w * (1 << PRECISION_BITS)) for w in k]
        starts.append(xmin)
        counts.append(xmax)
        weights.append(fixed)
    return starts, counts, weights


def sum_in_order(values: list[float]) -> float:
    total = 0.0
    for v in values:  # left to right, as the C loop accumulates
        total += v
    return total


def clip8(acc: int) -> int:
    if acc >= (1 << PRECISION_BITS << 8):
        return 255
    if acc <= 0:
        return 0
    return acc >> PRECISION_BITS


def horizontal(plane: list[int], width: int, height: int, out_w: int) -> list[int]:
    starts, counts, weights = coefficients(width, out_w)
    return [clip8((1 << (PRECISION_BITS - 1)) + sum(plane[y * width + starts[x] + i] * weights[x][i]
                                                    for i in range(counts[x])))
            for y in range(height) for x in range(out_w)]


def vertical(plane: list[int], width: int, height: int, out_h: int) -> list[int]:
    starts, counts, weights = coefficients(height, out_h)
    return [clip8((1 << (PRECISION_BITS - 1)) + sum(plane[(starts[y] + i) * width + x] * weights[y][i]
                                                    for i in range(counts[y])))
            for y in range(out_h) for x in range(width)]


def resize(plane: list[int], width: int, height: int, out_w: int, out_h: int) -> list[int]:
    """One 8-bit plane, row-major → (out_h, out_w); a pass is skipped when its size is unchanged.

    Pillow 13 runs the vertical pass first when the height shrinks by more than twice as many
    pixels as the width (Resample.c ``ImagingResampleInner``), else the horizontal one; the
    8-bit rounding between passes makes the order visible.
    """
    if out_h < height and height - out_h > 2 * (width - out_w):
        if out_h != height:
            plane = vertical(plane, width, height, out_h)
        return horizontal(plane, width, out_h, out_w) if out_w != width else plane
    if out_w != width:
        plane = horizontal(plane, width, height, out_w)
    return vertical(plane, out_w, height, out_h) if out_h != height else plane


def to_tensor(rgba: np.ndarray, spec) -> np.ndarray:
    """(H, W, 4) uint8 straight RGBA → (1, C, H, W) float32, with only the spec's keys."""
    c, h, w = spec.input_shape
    height, width = rgba.shape[:2]
    planes = [luma(rgba)] if spec.color == "gray" else [rgba[..., i].ravel().tolist() for i in range(3)]
    out = np.empty((c, h * w), np.float32)
    scale = np.float32(spec.scale)
    top = np.float32(255.0 * spec.scale)
    for ch, plane in enumerate(planes):
        mean = np.float32(spec.mean[0 if len(spec.mean) == 1 else ch])
        std = np.float32(spec.std[0 if len(spec.std) == 1 else ch])
        for i, p in enumerate(resize(plane, width, height, w, h)):
            x = np.float32(p) * scale
            if spec.invert:
                x = top - x
            out[ch, i] = (x - mean) / std
    return out.reshape(1, c, h, w)

