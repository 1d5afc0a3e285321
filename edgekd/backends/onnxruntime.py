"""ONNX Runtime on the CPU: fp32 ONNX, and int8 QDQ with per-channel weights."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from edgekd.backends.base import Artifact, Backend, BaseRunner
from edgekd.calibrate.cache import CACHE_FILENAME
from edgekd.errors import CompileError
from edgekd.models.loading import fp32_onnx_of  # a user's ONNX file is used as it is
from edgekd.onnx_export import export_onnx, op_inventory
from edgekd.ort_session import ort_session
from edgekd.quant import to_float
from edgekd.quant.export import export_qdq
from edgekd.quant.qdq import QDQConfig, qat_student, qdq_summary, quantize_onnx

__all__ = ["BACKEND", "OnnxRuntimeBackend", "OnnxRuntimeRunner", "qdq_summary", "runtime_ops"]
log = logging.getLogger(__name__)


def runtime_ops(path: Path) -> dict[str, int]:
    """The operators ONNX Runtime actually runs after its graph optimizations (e.g. QLinearConv)."""
    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        # quiet: the dump is for inspection only; silence its portability warning
        ort_session(path, quiet=True, optimized_model_path=optimized)
        return op_inventory(optimized)


class OnnxRuntimeRunner(BaseRunner):
    backend = "onnxruntime"

    def __init__(self, artifact: Artifact, threads: int = 1):
        super().__init__(artifact)
        self.threads = threads
        self.session = ort_session(artifact.path, threads)
        self.input_name = self.session.get_inputs()[0].name

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    accepts_qat = True  # exports a QAT student's learned scales as QDQ (no re-calibration)

    def is_available(self) -> tuple[bool, str]:
        try:
            # heavy SDK: imported on first use
            import onnxruntime  # noqa: F401
        except ImportError as exc:
            return False, f"onnxruntime is not importable: {exc}"
        return True, ""

    def compile(self, model, target, calib, out_dir: Path, spec, recipe=None, keep_float=None) -> Artifact:
        fmt = target.format
        if fmt.weights not in ("fp32", "int8") or fmt.activations not in ("fp32", "int8", "uint8"):
            raise CompileError(f"onnxruntime CPU: numeric format w{fmt.weights}/a{fmt.activations} is not "
                               "supported here; use fp32 or int8")
        out_dir = Path(out_dir)
        static = target.shapes.static_batch if target.shapes.batch == "static" else None
        input_shape = tuple(spec.input_shape)
        qat = qat_student(model, fmt, self.name)
        fp32 = fp32_onnx_of(model, input_shape, out_dir / "model.fp32.onnx", static) or \
            export_onnx(to_float(model) if qat else model, input_shape, out_dir / "model.fp32.onnx", static)
        files = {"fp32": fp32.name}
        details: dict = {"exported_ops": op_inventory(fp32)}
        if fmt.is_quantized and qat:  # QAT student: export its learned scales, no re-calibration
            main = export_qdq(model, input_shape, out_dir / "model.onnx", static)
            details.update(qdq_summary(main), quantization="qat (learned LSQ scales, BatchNorm folded)")
            precision = "int8"
        elif fmt.is_quantized:
            if calib is None or len(calib) == 0:
                raise CompileError("onnxruntime int8: calibration data is empty")
            config = QDQConfig.from_target(target, recipe)
            main = quantize_onnx(fp32, out_dir / "model.onnx", calib, config,
                                 static_batch=static, cache_path=out_dir / CACHE_FILENAME, keep_float=keep_float)
            files["calibration_cache"] = CACHE_FILENAME
            details.update(qdq_summary(main), weight_bits=config.weight_bits)
            precision = "int8"
        else:
            main = fp32
            precision = "fp32"
        details["runtime_ops"] = runtime_ops(main)
        details["reproducible"] = {"bit_identical": True}  # TorchScript export + ORT quantizer: same bytes
        files["model"] = main.name
        return Artifact(path=main, backend=self.name, target=target.name, precision=precision,
                        input_shape=input_shape, static_batch=static, files=files, details=details)

    def load(self, artifact: Artifact, threads: int = 1) -> OnnxRuntimeRunner:
        return OnnxRuntimeRunner(artifact, threads)

    def load_file(self, path: Path, threads: int = 1):
        session = ort_session(path, threads, quiet=True)
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})


BACKEND = OnnxRuntimeBackend()
