"""Hardware latency: profile compiled models in their runtime, and per-target latency models.

``edgekd.hw.profile(model_file_or_artifact, input_shape)`` times a model in its real runtime;
``edgekd.hw.latency_model(target).predict_ms(arch, input_shape)`` predicts a student's latency.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "profile": ("edgekd.hw.profiler", "profile"),
    "ProfileResult": ("edgekd.hw.profiler", "ProfileResult"),
    "latency_model": ("edgekd.hw.model", "latency_model"),
    "LatencyModel": ("edgekd.hw.model", "LatencyModel"),
    "blocks_of": ("edgekd.hw.features", "blocks_of"),
    "fit_profile": ("edgekd.hw.fit", "fit_profile"),
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'edgekd.hw' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
