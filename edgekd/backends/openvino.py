"""OpenVINO on the CPU (and Intel NPU): IR from our fp32 ONNX, and int8 from our QDQ ONNX.

int8 reuses the QDQ model ONNX Runtime's quantizer writes from edgekd's calibration ranges, so
OpenVINO and ONNX Runtime quantize with the same ranges; OpenVINO turns each Q/DQ pair into a
FakeQuantize and runs int8 kernels (the runtime model's precisions are recorded as proof).

Reproducibility (OpenVINO 2026.4): the ONNX files and the IR (``.xml`` and ``.bin``) are
bit-identical across builds from the same model and data. OpenVINO names the nodes it creates from a
process-wide counter (``Constant_5676`` in one build, ``Constant_17865`` in the next one of the same
process), so each IR is written by a fresh process. With the target's ``speed_gate``, which model
ships (int8 or fp32) is decided by timing on this machine and the times are written to
``details["speed_gate"]``, so ``artifact.json``, and near a tie the shipped model, can differ.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgekd.backends.base import Artifact, Backend, BaseRunner
from edgekd.calibrate.cache import CACHE_FILENAME
from edgekd.errors import CompileError, NotRunHere, require
from edgekd.models.loading import fp32_onnx_of  # a user's ONNX file is used as it is
from edgekd.onnx_export import export_onnx, op_inventory
from edgekd.quant import to_float
from edgekd.quant.export import export_qdq
from edgekd.quant.qdq import QDQConfig, qat_student, qdq_summary, quantize_onnx

log = logging.getLogger(__name__)


def device_status(device: str) -> tuple[bool, str]:
    """(True, "") when OpenVINO can compile for ``device`` here; else OpenVINO's own error."""
    try:
        ov = require("openvino", "openvino")
    except ImportError as exc:  # MissingExtraError is not an ImportError; kept for odd installs
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001
        return False, str(exc)
    core = ov.Core()
    if device in core.available_devices:
        return True, ""
    try:  # compile a one-op model: OpenVINO's own error says what is missing (driver, compiler, device)
        # heavy SDK: imported on first use
        from openvino import opset13 as ops

        param = ops.parameter([1, 4], ov.Type.f32)
        core.compile_model(ov.Model([ops.relu(param)], [param]), device)
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError with the plugin's own message
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Exception from")]
        return False, f"OpenVINO {ov.__version__.split('-')[0]} cannot use device {device}: {' '.join(lines)[:700]}"
    return False, f"OpenVINO lists devices {core.available_devices}, not {device}"


_CONVERT = ("import sys, openvino as ov; "
            "ov.save_model(ov.convert_model(sys.argv[1]), sys.argv[2], compress_to_fp16=False)")
IR_REPRODUCIBLE = ("each IR is written by a fresh process (OpenVINO names generated nodes from a process-wide "
                   "counter); with a speed gate, which model ships is decided by timing here")


def _convert(onnx_path: Path, xml_path: Path) -> Path:
    """ONNX → IR (fp32 weights kept: the default would store fp16), in a fresh process so that the
    generated node names, numbered by a process-wide counter, do not depend on earlier builds."""
    done = subprocess.run([sys.executable, "-c", _CONVERT, str(onnx_path), str(xml_path)], capture_output=True,
                          text=True)
    if done.returncode != 0 or not xml_path.exists():  # the frontend names the unsupported operator
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        raise CompileError(f"openvino: conversion of {onnx_path.name} failed: {' '.join(lines[-6:])[-900:]}")
    return xml_path


def runtime_precisions(compiled) -> dict[str, int]:
    """Executed compute layers per ``type:precision`` (``Convolution:u8`` proves int8 kernels)."""
    counts: dict[str, int] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        layer, prec = info["layerType"].astype(str), info["runtimePrecision"].astype(str)
        if layer in ("Input", "Output", "Const", "Reorder", "Reshape"):
            continue
        key = f"{layer}:{prec}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


class OpenVinoRunner(BaseRunner):
    backend = "openvino"

    def __init__(self, artifact: Artifact, threads: int = 1):
        import openvino as ov  # heavy SDK: imported on first use

        super().__init__(artifact)

        device = artifact.details.get("device", "CPU")
        ok, why = device_status(device)
        if not ok:
            raise NotRunHere(f"openvino {device}: not run here: {why}")
        core = ov.Core()
        config = {"PERFORMANCE_HINT": "LATENCY"}
        if device == "CPU":
            config["INFERENCE_NUM_THREADS"] = threads
            if artifact.precision in ("fp32", "int8"):
                # The CPU plugin's default inference precision is bf16 where the CPU offers it (this
                # AVX2 EPYC included): an "fp32" EfficientNet-Lite1 then agreed 93.3 % with torch
                # (SQNR 23 dB) instead of 100 % (115 dB). int8 IRs keep their non-quantized ops in f32.
                config["INFERENCE_PRECISION_HINT"] = "f32"
        self.compiled = core.compile_model(str(artifact.path), device, config)
        self.request = self.compiled.create_infer_request()

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        return np.array(self.request.infer({0: x})[0], dtype=np.float32)


class OpenVinoBackend(Backend):
    """OpenVINO: ``device`` "cpu" runs here; "npu" needs an Intel NPU and its driver."""

    accepts_qat = True  # builds its int8 IR from the QAT student's QDQ export (learned scales)
    name = "openvino"

    def is_available(self) -> tuple[bool, str]:
        return device_status("CPU")

    def compile(self, model, target, calib, out_dir: Path, spec, recipe=None, keep_float=None) -> Artifact:
        require("openvino", "openvino")
        fmt, out_dir = target.format, Path(out_dir)
        if fmt.weights not in ("fp32", "fp16", "int8"):
            raise CompileError(f"openvino: weights {fmt.weights} are not supported; use fp32, fp16 or int8")
        device = "NPU" if self.name == "openvino-npu" else target.device.upper()
        # The NPU compiler needs static shapes; the CPU takes a dynamic batch.
        static = target.shapes.static_batch if target.shapes.batch == "static" or device == "NPU" else None
        input_shape = tuple(spec.input_shape)
        qat = fmt.is_quantized and qat_student(model, fmt, self.name)
        fp32_onnx = fp32_onnx_of(model, input_shape, out_dir / "model.fp32.onnx", static) or \
            export_onnx(to_float(model) if qat else model, input_shape, out_dir / "model.fp32.onnx", static)
        files = {"fp32_onnx": fp32_onnx.name, "fp32": _convert(fp32_onnx, out_dir / "model.fp32.xml").name}
        files["fp32_weights"] = "model.fp32.bin"
        details: dict = {"device": device, "exported_ops": op_inventory(fp32_onnx)}
        if qat:  # the student's learned scales, as ONNX Runtime's artifact carries them (no re-calibration)
            qdq = export_qdq(model, input_shape, out_dir / "model.qdq.onnx", static)
            details.update(qdq_summary(qdq), quantization="qat (learned LSQ scales, BatchNorm folded)")
            main = _convert(qdq, out_dir / "model.xml")
            files.update(qdq_onnx=qdq.name, weights="model.bin")
            precision = "int8"
        elif fmt.is_quantized:
            config = QDQConfig.from_target(target, recipe)
            qdq = quantize_onnx(fp32_onnx, out_dir / "model.qdq.onnx", calib, config,
                                static_batch=static, cache_path=out_dir / CACHE_FILENAME, keep_float=keep_float)
            details.update(qdq_summary(qdq), weight_bits=config.weight_bits)
            main = _convert(qdq, out_dir / "model.xml")
            files.update(qdq_onnx=qdq.name, calibration_cache=CACHE_FILENAME, weights="model.bin")
            precision = "int8"
        else:
            main, precision = out_dir / files["fp32"], "fp32"
        files["model"] = main.name
        details["reproducible"] = {"bit_identical": True, "how": IR_REPRODUCIBLE}
        details["device_compile"] = self._try_compile(main, device, details)
        return Artifact(path=main, backend=self.name, target=target.name, precision=precision,
                        input_shape=input_shape, static_batch=static, files=files, details=details)

    @staticmethod
    def _try_compile(xml: Path, device: str, details: dict) -> str:
        """Compile for the device when it is here (records int8 kernels); else OpenVINO's reason."""
        # heavy SDK: imported on first use
        import openvino as ov

        ok, why = device_status(device)
        if not ok:
            return f"not compiled here: {why}"
        compiled = ov.Core().compile_model(str(xml), device)
        details["runtime_precisions"] = runtime_precisions(compiled)
        return f"compiled for {device}"

    def load(self, artifact: Artifact, threads: int = 1) -> OpenVinoRunner:
        return OpenVinoRunner(artifact, threads)

    def load_file(self, path: Path, threads: int = 1):
        ov = require("openvino", "openvino")
        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                            "PERFORMANCE_HINT": "LATENCY"})
        request = compiled.create_infer_request()
        return lambda x: request.infer({0: x})


BACKEND = OpenVinoBackend()
