"""The backend contract, the base runner and the static backend table.

A backend module subclasses :class:`Backend`, which declares every capability callers use, each
with its default; it is listed in the table with the extra that installs its SDK and imported only
when first used, so ``import edgekd`` stays light. A runner subclasses :class:`BaseRunner`, which
checks the input batch and feeds static-batch runtimes.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from edgekd.backends.artifact import ARTIFACT_FILENAME, Artifact, file_sha256, folder_hashes
from edgekd.errors import ConfigError, EdgeKDError
from edgekd.registry import Registry

if TYPE_CHECKING:  # types only: a backend module imports torch itself where it needs it
    from torch import nn

    from edgekd.data.spec import PreprocessSpec
    from edgekd.targets import CalibrationRecipe, Target

__all__ = ["ARTIFACT_FILENAME", "Artifact", "BACKENDS", "Backend", "BackendEntry", "BaseRunner", "Runner",
           "backend_entry", "check_batch", "file_sha256", "folder_hashes", "get_backend", "list_backends",
           "run_in_static_batches"]


class Runner(Protocol):
    """Runs an artifact in its runtime: float32 NCHW numpy in, float32 logits out."""

    backend: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


def check_batch(x: np.ndarray, artifact: Artifact) -> np.ndarray:
    """``x`` as a contiguous float32 batch of the artifact's input shape (one sample gains a batch axis)."""
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


class BaseRunner(ABC):
    """A runner of one artifact: checks the input, then feeds the runtime whole or in static batches.

    Subclasses set ``backend``, open the runtime in ``__init__`` (after ``super().__init__``) and
    implement :meth:`run_batch`.
    """

    backend: ClassVar[str]

    def __init__(self, artifact: Artifact):
        self.artifact = artifact

    @property
    def batch(self) -> int | None:
        """The batch size every runtime call must have; None: any (the artifact's ``static_batch``)."""
        return self.artifact.static_batch

    @abstractmethod
    def run_batch(self, x: np.ndarray) -> np.ndarray:
        """One runtime call on a checked float32 batch (of exactly :attr:`batch` samples when set)."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = check_batch(x, self.artifact)
        if self.batch:
            return run_in_static_batches(self.run_batch, x, self.batch)
        return self.run_batch(x)


class Backend(ABC):
    """One runtime: compile a model for a target, say whether it runs here, load what it compiled.

    Every capability a caller relies on is declared here; the defaults are what a backend that
    does not override it means.
    """

    #: The registry name (``backend = "..."`` in a target file).
    name: ClassVar[str]
    #: Whether ``compile`` takes a QAT-prepared student as it is and exports its learned scales.
    #: Default False: :func:`edgekd.compile` hands such a backend the student's float twin to calibrate.
    accepts_qat: ClassVar[bool] = False
    #: Whether the runtime here emulates the device (right numbers, not device speed): validation
    #: is then capped and shows progress.
    emulated: ClassVar[bool] = False

    @abstractmethod
    def is_available(self) -> tuple[bool, str]:
        """(True, "") when artifacts of this backend run here; else (False, the reason)."""

    def is_available_for(self, target: Target) -> tuple[bool, str]:
        """Whether ``target``'s artifact runs here. Default: :meth:`is_available` (one device per backend)."""
        return self.is_available()

    def can_compile(self) -> tuple[bool, str]:
        """(True, "") when ``compile`` works here, else the reason. Default: True (the core install
        builds it); a backend whose compiler is an SDK of its own (Vela, coremltools) overrides this."""
        return True, ""

    @abstractmethod
    def compile(self, model: nn.Module, target: Target, calib: np.ndarray, out_dir: Path, spec: PreprocessSpec,
                recipe: CalibrationRecipe | None = None, keep_float: list[str] | None = None) -> Artifact:
        """Compile ``model`` for ``target`` into ``out_dir`` and return the artifact (not yet saved).

        Args:
            model: float32 NCHW in, logits out; a QAT-prepared student only where ``accepts_qat``.
            target: the device target; its ``[format]`` fields are honoured or rejected.
            calib: float32 NCHW calibration samples (unused by float formats).
            out_dir: the (staging) artifact folder.
            spec: the preprocessing spec; gives the input shape.
            recipe: the calibration recipe; None: min-max ranges (:class:`edgekd.quant.qdq.QDQConfig`).
            keep_float: node names to leave in float; a backend that cannot raises CompileError.
        """

    @abstractmethod
    def load(self, artifact: Artifact, threads: int = 1) -> Runner:
        """A runner of ``artifact`` in this runtime; NotRunHere where it cannot run here."""

    def load_file(self, path: Path, threads: int = 1) -> Callable[[np.ndarray], object]:
        """A bare model file of this runtime (no artifact record) as ``run(x)`` returning the runtime's
        raw outputs, with no input checks: what :func:`edgekd.hw.profile` times.
        Default: ConfigError (this backend times artifacts only)."""
        raise ConfigError(f"{self.name}: cannot run a bare model file; compile an artifact and load it")

    @property
    def reference(self) -> Callable[..., tuple[Runner, str] | None]:
        """Optional: ``reference(artifact, threads=1) -> (runner, label) | None``, running the artifact's
        quantized graph in a reference runtime here where the device is absent (labelled, never a pass).

        Default: none. The base declares it as an attribute that is absent (reading it raises
        AttributeError, so ``hasattr(backend, "reference")`` is False); a backend with a reference
        runtime defines the method. Ask :attr:`has_reference` rather than ``hasattr``.
        """
        raise AttributeError(f"backend {self.name!r} has no reference runtime")

    @property
    def has_reference(self) -> bool:
        """Whether the backend defines :attr:`reference`."""
        return type(self).reference is not Backend.reference


@dataclass(frozen=True)
class BackendEntry:
    module: str
    extra: str | None  # None: part of the core install
    summary: str


# Lazy: an entry names the module to import on first use, and the extra that installs its SDK.
BACKENDS: Registry[BackendEntry] = Registry("backend")
BACKENDS.add("onnxruntime", BackendEntry("edgekd.backends.onnxruntime", None, "ONNX Runtime CPU, fp32 and int8 QDQ"))
BACKENDS.add("openvino", BackendEntry("edgekd.backends.openvino", "openvino", "OpenVINO CPU/NPU, fp32 and int8 IR"))
BACKENDS.add("openvino-npu", BackendEntry("edgekd.backends.openvino_npu", "openvino",
                                          "OpenVINO on an Intel NPU, int8 IR"))
BACKENDS.add("tensorrt", BackendEntry("edgekd.backends.tensorrt", "tensorrt",
                                      "TensorRT engine from a TensorRT-placement QDQ ONNX"))
BACKENDS.add("qnn", BackendEntry("edgekd.backends.qnn", "qnn", "Qualcomm HTP via onnxruntime-qnn, static int8 QDQ"))
BACKENDS.add("ethosu", BackendEntry("edgekd.backends.ethosu", "ethosu", "Arm Ethos-U: int8 TFLite compiled by Vela"))
BACKENDS.add("coreml", BackendEntry("edgekd.backends.coreml", "coreml",
                                    "Core ML .mlpackage, fp16 / int8 weights / W8A8"))
BACKENDS.add("executorch", BackendEntry("edgekd.backends.executorch", "executorch",
                                        "ExecuTorch XNNPACK .pte, fp32 and int8"))


def list_backends() -> list[str]:
    return BACKENDS.names()


def backend_entry(name: str) -> BackendEntry:
    """The table entry of ``name``; ConfigError listing the valid names when unknown."""
    return BACKENDS.get(name)


def get_backend(name: str) -> Backend:
    """The backend registered as ``name``, importing its module on first use (ImportError: SDK missing)."""
    module = importlib.import_module(backend_entry(name).module)
    return module.BACKEND
