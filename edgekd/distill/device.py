"""Where training runs: ``"cpu"`` (the default, bit-reproducible), ``"cuda"``/``"cuda:N"`` or ``"auto"``.

Only the training steps move: data, teacher outputs and the returned student stay on the CPU, so
calibration, export and every backend see exactly what a CPU run gives them. Under ``torchrun``
a ``"cuda"`` run puts each rank on the GPU named by ``LOCAL_RANK``.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager

import torch
from torch import nn

from edgekd.distill.losses.base import ModelOutput
from edgekd.errors import ConfigError

_PATTERN = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")


def check_device(name: str, label: str = "device") -> str:
    """``name`` if it is a device this machine has, else a :class:`ConfigError` naming ``label`` (the argument
    or flag) before any training."""
    if not isinstance(name, str) or not _PATTERN.match(name):
        raise ConfigError(f"{label} {name!r}: use cpu, cuda, cuda:N or auto")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = f"with CUDA {torch.version.cuda}" if torch.version.cuda else "without CUDA"
            raise ConfigError(f"{label} {name!r}: no CUDA device here (torch {torch.__version__} is built {build}); "
                              "use cpu")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{label} {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return name


def resolve_device(name: str = "cpu") -> torch.device:
    """The torch device a run with ``name`` trains on (``auto``: CUDA when present)."""
    name = check_device(name)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and "LOCAL_RANK" in os.environ:  # torchrun: one GPU per rank
        name = f"cuda:{int(os.environ['LOCAL_RANK']) % torch.cuda.device_count()}"
    return torch.device(name)


def output_to(out: ModelOutput | None, device: torch.device) -> ModelOutput | None:
    """Teacher outputs (cached on the CPU) on the training device."""
    if out is None or out.logits.device == device:
        return out
    return ModelOutput(out.logits.to(device, non_blocking=True),
                       {k: v.to(device, non_blocking=True) for k, v in out.features.items()})


def model_device(model: nn.Module) -> torch.device:
    """Where ``model``'s first parameter (or buffer) lives; the CPU for a module without either."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@contextmanager
def on_device(device: torch.device, *modules: nn.Module | None):
    """Move ``modules`` to ``device`` for the block and back to where each was, even on an error."""
    homes = [(m, model_device(m)) for m in modules if m is not None]
    try:
        for module, _ in homes:
            module.to(device)
        yield
    finally:
        for module, home in homes:
            module.to(home)
