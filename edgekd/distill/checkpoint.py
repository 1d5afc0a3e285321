"""Per-epoch checkpoints, written atomically and loaded with ``weights_only=True``."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from edgekd._io import atomic_write
from edgekd.errors import CheckpointError

CKPT_FORMAT = "edgekd.ckpt/1"


def save_checkpoint(path: Path, *, fingerprint: str, epoch: int, state: dict, history: list[dict]) -> None:
    blob = {"format": CKPT_FORMAT, "fingerprint": fingerprint, "epoch": epoch,
            "history": json.dumps(history), **state}
    atomic_write(path, lambda p: torch.save(blob, p))


def load_checkpoint(path: Path, fingerprint: str) -> dict:
    """Read a checkpoint for resuming; a corrupt or foreign file is an error, never a restart."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a damaged file
        raise CheckpointError(f"{path}: checkpoint is corrupt or unreadable ({type(exc).__name__}: {exc}); "
                              "delete it to start over") from exc
    if not isinstance(blob, dict) or blob.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{path}: not an edgekd checkpoint (expected format {CKPT_FORMAT!r})")
    if blob.get("fingerprint") != fingerprint:
        raise CheckpointError(f"{path}: checkpoint belongs to a different run (model, data or settings "
                              "changed); delete it or rerun without --resume")
    blob["history"] = json.loads(blob["history"])
    return blob
