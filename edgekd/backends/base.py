"""The backend protocol, the artifact record and the static backend table.

A backend module implements :class:`Backend`; it is listed in ``_TABLE`` with the extra that
installs its SDK and imported only when first used, so ``import edgekd`` stays light.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from edgekd.errors import ConfigError, EdgeKDError

ARTIFACT_FILENAME = "artifact.json"


@dataclass
class Artifact:
    """A compiled model on disk and what produced it."""

    path: Path  # the file a runtime loads
    backend: str
    target: str
    precision: str  # e.g. "int8", "fp32", "fp16"
    input_shape: tuple[int, ...]  # (C, H, W) without the batch
    static_batch: int | None = None  # None: any batch size
    files: dict[str, str] = field(default_factory=dict)  # role -> file name in the artifact folder
    details: dict = field(default_factory=dict)  # backend facts: ops, kept-in-float layers, sizes

    @property
    def folder(self) -> Path:
        return Path(self.path).parent

    @property
    def size_bytes(self) -> int:
        return Path(self.path).stat().st_size

    def to_json(self) -> dict:
        data = asdict(self)
        data["path"] = Path(self.path).name
        return data

    def save(self) -> Path:
        from edgekd._io import write_json

        return write_json(self.folder / ARTIFACT_FILENAME, self.to_json())

    @classmethod
    def read(cls, path: str | Path) -> "Artifact":
        """Read ``artifact.json`` from an artifact folder, the json itself, or a model file beside it."""
        path = Path(path)
        meta = path if path.name == ARTIFACT_FILENAME else (path / ARTIFACT_FILENAME if path.is_dir()
                                                             else path.parent / ARTIFACT_FILENAME)
        if path.is_dir() and not meta.exists() and (path.parent / ARTIFACT_FILENAME).exists():
            meta = path.parent / ARTIFACT_FILENAME  # a model that is a folder, e.g. a Core ML .mlpackage
        if not meta.exists():
            raise ConfigError(f"{path}: no {ARTIFACT_FILENAME} beside it; pass an edgekd artifact folder or file")
        try:
            data = json.loads(meta.read_text())
            data["path"] = meta.parent / data["path"]
            data["input_shape"] = tuple(data["input_shape"])
            artifact = cls(**data)
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{meta}: not a valid artifact record: {exc}") from exc
        if (path.is_file() or meta.parent != path) and path.name != ARTIFACT_FILENAME \
                and path.resolve() != Path(artifact.path).resolve():
            artifact.path = path  # the user named another model file of the same folder (e.g. the fp32 one)
        return artifact


class Runner(Protocol):
    """Runs an artifact in its runtime: float32 NCHW numpy in, float32 logits out."""

    backend: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class Backend(Protocol):
    name: str

    def is_available(self) -> tuple[bool, str]:
        """(True, "") when compile and run work here; else (False, the reason)."""

    def compile(self, model, target, calib, out_dir: Path, spec) -> Artifact: ...

    def load(self, artifact: Artifact, threads: int = 1) -> Runner: ...


@dataclass(frozen=True)
class BackendEntry:
    module: str
    extra: str | None  # None: part of the core install
    summary: str


_TABLE: dict[str, BackendEntry] = {
    "onnxruntime": BackendEntry("edgekd.backends.onnxruntime", None, "ONNX Runtime CPU, fp32 and int8 QDQ"),
    "openvino": BackendEntry("edgekd.backends.openvino", "openvino", "OpenVINO CPU/NPU, fp32 and int8 IR"),
    "openvino-npu": BackendEntry("edgekd.backends.openvino_npu", "openvino", "OpenVINO on an Intel NPU, int8 IR"),
    "tensorrt": BackendEntry("edgekd.backends.tensorrt", "tensorrt", "TensorRT engine from a TensorRT-placement QDQ ONNX"),
    "qnn": BackendEntry("edgekd.backends.qnn", "qnn", "Qualcomm HTP via onnxruntime-qnn, static int8 QDQ"),
    "ethosu": BackendEntry("edgekd.backends.ethosu", "ethosu", "Arm Ethos-U: int8 TFLite compiled by Vela"),
    "coreml": BackendEntry("edgekd.backends.coreml", "coreml", "Core ML .mlpackage, fp16 / int8 weights / W8A8"),
    "executorch": BackendEntry("edgekd.backends.executorch", "executorch", "ExecuTorch XNNPACK .pte, fp32 and int8"),
}


def list_backends() -> list[str]:
    return sorted(_TABLE)


def backend_entry(name: str) -> BackendEntry:
    if name not in _TABLE:
        raise ConfigError(f"unknown backend {name!r}; valid: {', '.join(list_backends())}")
    return _TABLE[name]


def get_backend(name: str) -> Backend:
    module = importlib.import_module(backend_entry(name).module)
    return module.BACKEND


def check_batch(x: np.ndarray, artifact: Artifact) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == len(artifact.input_shape):
        x = x[None]
    if tuple(x.shape[1:]) != tuple(artifact.input_shape):
        raise EdgeKDError(f"input shape {tuple(x.shape[1:])} does not match the artifact's "
                          f"{tuple(artifact.input_shape)} ({artifact.path})")
    return x


def run_in_static_batches(run_one, x: np.ndarray, batch: int) -> np.ndarray:
    """Feed a static-batch runtime: chunks of ``batch``, the last one zero-padded."""
    outs = []
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        n = len(chunk)
        if n < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - n, *chunk.shape[1:]), np.float32)])
        outs.append(run_one(chunk)[:n])
    return np.concatenate(outs)
