"""The calibration cache: per-tensor ranges written beside the artifact, and ONNX Runtime's form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekd._io import write_json
from edgekd.errors import ConfigError

CACHE_FILENAME = "calibration.cache.json"
CACHE_SCHEMA = "edgekd.calibration/1"


@dataclass
class Ranges:
    """Per-tensor (lo, hi) activation ranges and how they were obtained."""

    method: str
    symmetric: bool
    samples: int
    ranges: dict[str, tuple[float, float]]
    params: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"schema": CACHE_SCHEMA, "method": self.method, "symmetric": self.symmetric,
                "samples": self.samples, "params": self.params,
                "ranges": {k: [lo, hi] for k, (lo, hi) in self.ranges.items()}}

    def to_onnxruntime(self, path: Path) -> Path:
        """Write the ranges as ONNX Runtime's calibration cache (read by ``quantize_static``)."""
        # heavy SDK: imported on first use
        from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData, save_tensors_data

        data = {k: TensorData(lowest=np.array(lo, np.float32), highest=np.array(hi, np.float32))
                for k, (lo, hi) in self.ranges.items()}
        save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), path)
        return Path(path)


def write_cache(ranges: Ranges, path: Path) -> Path:
    return write_json(Path(path), ranges.to_json())


def read_cache(path: Path) -> Ranges:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("schema") != CACHE_SCHEMA:
            raise ValueError(f"expected a JSON object with schema {CACHE_SCHEMA!r}")
        ranges = {str(k): (float(v[0]), float(v[1])) for k, v in data["ranges"].items()}
        bad = [k for k, (lo, hi) in ranges.items() if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi)]
        if bad:  # a NaN or inverted range would quantize every value of that tensor to garbage
            raise ValueError(f"range of {bad[0]!r} is not finite with low <= high")
        return Ranges(data["method"], data["symmetric"], data["samples"], ranges, data.get("params", {}))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        raise ConfigError(f"{path}: not an edgekd calibration cache: {type(exc).__name__}: {exc}") from None
