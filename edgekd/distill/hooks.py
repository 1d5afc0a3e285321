"""Forward hooks that capture intermediate features by module name."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from edgekd.errors import ConfigError


@contextmanager
def capture_features(model: nn.Module, names: list[str] | tuple[str, ...]):
    """Yield a dict filled with ``{name: output}`` of the named modules on each forward."""
    store: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    handles = []
    for name in names:
        if name not in modules:
            valid = [n for n in modules if n][:20]
            raise ConfigError(f"module {name!r} not found in {type(model).__name__}; some valid names: {valid}")
        handles.append(modules[name].register_forward_hook(_saver(store, name)))
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()


def _saver(store, name):
    def hook(_module, _inputs, output):
        store[name] = output

    return hook
