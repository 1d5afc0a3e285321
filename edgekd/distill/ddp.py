"""Data-parallel distillation on ``torch.distributed`` (launched with ``torchrun``).

``torchrun --nproc_per_node N script.py`` sets ``RANK``/``WORLD_SIZE``; :func:`setup` then joins
the process group (gloo on CPU, nccl when training on CUDA). The trainer wraps the student (and the loss's
learned adapters) in ``DistributedDataParallel`` and splits every global batch across ranks, so
N processes take the same optimizer steps as one process with the same ``batch_size``. Only rank
0 writes checkpoints, reports and files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from edgekd.distill.device import resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank and the number of processes."""

    rank: int = 0
    world: int = 1

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's share of one global batch (strided, so shares differ by at most one)."""
        return index[self.rank :: self.world] if self.enabled else index

    def wrap(self, module: nn.Module, device: torch.device | None = None) -> nn.Module:
        if not self.enabled:
            return module
        if device is not None and device.type == "cuda":
            return DistributedDataParallel(module, device_ids=[device], broadcast_buffers=False)
        return DistributedDataParallel(module, broadcast_buffers=False)

    def all_mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalars over ranks (used for the per-epoch loss terms)."""
        if not self.enabled or not values:
            return values
        keys = sorted(values)
        on = "cuda" if dist.get_backend() == "nccl" else "cpu"  # nccl reduces only CUDA tensors
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=on)
        dist.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t)}

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def setup(backend: str | None = None, device: str = "cpu") -> DistContext:
    """Join the process group when launched by torchrun; a plain run gets a single-process context.
    The backend follows where training runs (``device``), not whether the machine has a GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_initialized():
        backend = backend or ("nccl" if resolve_device(device).type == "cuda" else "gloo")
        dist.init_process_group(backend=backend)
        log.info("joined process group: rank %d of %d (%s)", dist.get_rank(), world, backend)
    return DistContext(dist.get_rank(), dist.get_world_size())


def current() -> DistContext:
    """The context of an already-initialized process group (single process otherwise)."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size())
    return DistContext()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
