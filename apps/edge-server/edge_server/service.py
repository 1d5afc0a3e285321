"""The model behind the server: an edgekd artifact, its preprocessing spec and its report."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import edgekd
from edgekd.backends.base import Artifact
from edgekd.data.spec import SPEC_FILENAME, PreprocessSpec

log = logging.getLogger(__name__)

IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "GIF")  # what Pillow decodes without plugins


class RequestError(Exception):
    """A request the server refuses: carries the HTTP status and a message for the client."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class ImageLimits:
    max_side: int = 4096
    max_pixels: int = 16_000_000


class ModelService:
    """Loads an artifact with ``edgekd.load`` (its runtime comes from artifact.json) and runs it.

    Calls into the runner are serialized by a lock, since not every runtime's session is
    thread-safe (an OpenVINO infer request is not); throughput comes from micro-batching.
    """

    def __init__(self, artifact_path: str | Path, threads: int = 1, limits: ImageLimits = ImageLimits(),
                 verify: bool = True):
        self.artifact = Artifact.read(artifact_path)
        self.runner = edgekd.load(self.artifact, threads=threads, verify=verify)  # IntegrityError: refuse to start
        self.verified = verify
        self.spec = PreprocessSpec.load(self.artifact.folder / self.artifact.files.get("preprocess", SPEC_FILENAME))
        self._check_labels()
        self.limits = limits
        self.report = _read_report(self.artifact.folder)
        # a report shows validated numbers only for the verified artifact it names (same sha256 record)
        self.report_verified = bool(self.verified and self.report
                                    and (self.report.get("artifact") or {}).get("sha256") == self.artifact.sha256)
        if self.report and not self.report_verified:
            log.warning("%s: report.json does not match the verified artifact; its accuracy is not shown",
                        self.artifact.folder)
        self._lock = threading.Lock()
        self.info = self._info()

    def _check_labels(self) -> None:
        """Refuse to start when preprocess.json's labels disagree with the model's outputs."""
        batch = self.artifact.static_batch or 1
        out = np.asarray(self.runner(np.zeros((batch, *self.spec.input_shape), np.float32)))
        if out.ndim != 2 or out.shape[1] != len(self.spec.labels):
            raise edgekd.ConfigError(f"{self.artifact.folder}: preprocess.json names {len(self.spec.labels)} labels "
                                     f"but the model outputs shape {list(out.shape)}; refusing to serve it")

    def _info(self) -> dict:
        shown = self.report if self.report_verified else None
        art = shown.get("artifact", {}) if shown else {}
        gate = shown.get("gate", {}) if shown else {}
        return {
            "verified": self.verified,
            "report_verified": self.report_verified,
            "target": self.artifact.target,
            "backend": self.artifact.backend,
            "precision": self.artifact.precision,
            "input_shape": list(self.spec.input_shape),
            "static_batch": self.artifact.static_batch,
            "labels": list(self.spec.labels),
            "validated_accuracy": art.get("accuracy"),
            "gate_passed": gate.get("passed"),
            "report": "report.json" if self.report else None,
        }

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Normalized (N, C, H, W) float32 → (logits, inference milliseconds)."""
        with self._lock:
            start = time.perf_counter()
            logits = np.asarray(self.runner(x), dtype=np.float32)
            return logits, (time.perf_counter() - start) * 1e3

    def image_tensor(self, data: bytes) -> np.ndarray:
        """Encoded image bytes → the (1, C, H, W) input, as the preprocessing spec says."""
        from PIL import Image

        if not data:
            raise RequestError(400, "empty_image", "the image is empty")
        try:
            image = Image.open(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types for unreadable headers
            raise RequestError(400, "undecodable_image", f"not a readable image: {type(exc).__name__}") from exc
        if image.format not in IMAGE_FORMATS:
            raise RequestError(415, "unsupported_image_format",
                               f"image format {image.format} is not accepted; use one of {', '.join(IMAGE_FORMATS)}")
        self._check_size(*image.size)
        try:  # verify() checks the whole stream (PNG chunk CRCs); the bounded pixel count rules out bombs
            image.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
            return self.spec.from_image(image)
        except Exception as exc:  # noqa: BLE001 - truncated or corrupt pixel data
            raise RequestError(400, "corrupt_image", f"the image data is truncated or corrupt: {exc}") from exc

    def _check_size(self, width: int, height: int) -> None:
        lim = self.limits
        if width < 1 or height < 1 or width > lim.max_side or height > lim.max_side or width * height > lim.max_pixels:
            raise RequestError(422, "image_dimensions",
                               f"image is {width}x{height}; the limits are {lim.max_side} px per side and "
                               f"{lim.max_pixels} pixels")

    def tensor_from_json(self, payload, max_batch: int) -> np.ndarray:
        """``{"tensor": nested lists}`` of shape (C, H, W) or (N, C, H, W), already normalized."""
        if not isinstance(payload, dict) or set(payload) != {"tensor"}:
            raise RequestError(422, "tensor_payload", 'the JSON body must be an object with one key, "tensor"')
        try:
            x = np.asarray(payload["tensor"], dtype=np.float32)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise RequestError(422, "tensor_values", f"tensor is not a rectangular array of numbers: {exc}") from exc
        expected, sent = tuple(self.spec.input_shape), list(x.shape)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            dims = ", ".join(map(str, expected))
            raise RequestError(422, "tensor_shape", f"tensor has shape {sent}; expected [{dims}] or [N, {dims}]")
        if not 1 <= len(x) <= max_batch:
            raise RequestError(422, "tensor_batch", f"tensor batch is {len(x)}; 1 to {max_batch} samples are accepted")
        if not np.isfinite(x).all():
            raise RequestError(422, "tensor_values", "tensor has NaN or infinite values")
        return x

    def top_k(self, logits: np.ndarray, k: int = 5) -> list[dict]:
        """One row of logits → the k most probable classes with softmax probabilities."""
        z = logits.astype(np.float64)
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p, kind="stable")[: min(k, len(p))]
        return [{"index": int(i), "label": self.spec.labels[i], "probability": float(p[i])} for i in order]


def _read_report(folder: Path) -> dict | None:
    """The build's report.json beside the artifact (absent when it came from ``edgekd.compile``)."""
    path = Path(folder) / "report.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("%s: unreadable report (%s); serving without validated accuracy", path, exc)
        return None
