"""Helpers for the latency tests: a tiny student and throw-away target files."""

from __future__ import annotations

from pathlib import Path

TINY = {"name": "resnet", "depths": (1, 1, 1), "widths": (4, 8, 8)}


def write_target(folder: Path, name: str, *, backend="onnxruntime", device="cpu", model="profile") -> Path:
    """A minimal valid target TOML named ``name`` in ``folder``."""
    path = Path(folder) / f"{name}.toml"
    path.write_text(f'name = "{name}"\nbackend = "{backend}"\ndevice = "{device}"\nops = ["conv"]\n'
                    '[format]\nweights = "int8"\nactivations = "uint8"\n'
                    f'[latency]\nthreads = 1\nmodel = "{model}"\n')
    return path
