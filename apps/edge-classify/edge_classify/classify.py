"""Classify a folder of images or a stream of raw frames with an edgekd artifact."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import numpy as np

import edgekd
from edgekd.backends.base import Artifact
from edgekd.data.spec import SPEC_FILENAME, PreprocessSpec

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif")


@dataclass
class Summary:
    """What one run classified: counts per class, throughput, and what it skipped and why."""

    target: str
    backend: str
    images: int = 0
    seconds: float = 0.0  # wall time: reading + preprocessing + inference
    inference_seconds: float = 0.0
    counts: Counter = field(default_factory=Counter)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    predictions: list[tuple[str, str, float]] = field(default_factory=list)  # (name, label, probability)
    correct: int = 0
    labelled: int = 0  # images whose parent folder names a class

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    def to_json(self) -> dict:
        return {"target": self.target, "backend": self.backend, "images": self.images,
                "seconds": round(self.seconds, 4), "images_per_second": round(self.images_per_second, 2),
                "inference_seconds": round(self.inference_seconds, 4), "counts": dict(sorted(self.counts.items())),
                "skipped": [{"name": n, "reason": r} for n, r in self.skipped],
                "accuracy": self.accuracy, "labelled": self.labelled}


class Classifier:
    """An artifact in its own runtime (``edgekd.load``) plus the preprocessing spec written beside it."""

    def __init__(self, artifact_path: str | Path, threads: int = 1):
        self.artifact = Artifact.read(artifact_path)
        self.runner = edgekd.load(self.artifact, threads=threads)
        self.spec = PreprocessSpec.load(self.artifact.folder / self.artifact.files.get("preprocess", SPEC_FILENAME))

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(N, C, H, W) normalized → (class indices, probabilities, seconds in the runtime)."""
        start = time.perf_counter()
        logits = np.asarray(self.runner(batch), dtype=np.float64)
        seconds = time.perf_counter() - start
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        return p.argmax(1), p.max(1), seconds

    def classify(self, items: Iterable[tuple[str, object]], batch_size: int = 32) -> Summary:
        """Classify ``(name, PIL image or None-with-reason)`` items in batches; returns the summary."""
        summary = Summary(self.artifact.target, self.artifact.backend)
        started = time.perf_counter()
        names, tensors = [], []
        for name, image in items:
            if isinstance(image, str):  # a reason: the item could not be read
                summary.skipped.append((name, image))
                continue
            names.append(name)
            tensors.append(self.spec.from_image(image))
            if len(names) == batch_size:
                self._flush(names, tensors, summary)
                names, tensors = [], []
        if names:
            self._flush(names, tensors, summary)
        summary.seconds = time.perf_counter() - started
        return summary

    def _flush(self, names: list[str], tensors: list[np.ndarray], summary: Summary) -> None:
        index, prob, seconds = self.run(np.concatenate(tensors))
        summary.inference_seconds += seconds
        for name, i, p in zip(names, index, prob):
            label = self.spec.labels[int(i)]
            summary.counts[label] += 1
            summary.predictions.append((name, label, float(p)))
            parent = Path(name).parent.name
            if parent in self.spec.labels:
                summary.labelled += 1
                summary.correct += int(parent == label)
        summary.images += len(names)


def folder_images(root: str | Path) -> Iterator[tuple[str, object]]:
    """Every image under ``root`` (sorted, recursive) as (relative name, image or skip reason)."""
    from PIL import Image

    root = Path(root)
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        name = str(path.relative_to(root))
        try:
            with Image.open(path) as image:
                image.load()
                yield name, image.copy()
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, never fatal
            yield name, f"unreadable image: {type(exc).__name__}: {exc}"


def raw_frames(stream: BinaryIO, width: int, height: int, color: str = "rgb",
               max_frames: int | None = None) -> Iterator[tuple[str, object]]:
    """Fixed-size raw frames (``ffmpeg -f rawvideo -pix_fmt rgb24|gray``) read from ``stream`` until EOF."""
    from PIL import Image

    mode, channels = ("RGB", 3) if color == "rgb" else ("L", 1)
    size = width * height * channels
    n = 0
    while max_frames is None or n < max_frames:
        data = _read_exactly(stream, size)
        if not data:
            return
        if len(data) < size:
            yield f"frame {n}", f"truncated frame: {len(data)} of {size} bytes"
            return
        yield f"frame {n}", Image.frombytes(mode, (width, height), data)
        n += 1


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)
