"""ONNX Runtime on the CPU: fp32 ONNX, and int8 QDQ with per-channel weights."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx

from edgekd.backends.base import Artifact, check_batch, run_in_static_batches
from edgekd.backends.export import export_onnx, op_inventory
from edgekd.calibrate.cache import CACHE_FILENAME
from edgekd.errors import CompileError

log = logging.getLogger(__name__)

_WEIGHTED = {"Conv", "Gemm", "MatMul", "ConvTranspose"}
def quantize_qdq(fp32_path: Path, out_path: Path, calib: np.ndarray, *, method: str = "minmax",
                 percentile: float = 99.99, symmetric_activations: bool = False, per_channel: bool = True,
                 static_batch: int | None = None, cache_path: Path | None = None,
                 nodes_to_exclude: list[str] | None = None, extra_options: dict | None = None) -> Path:
    """Static int8 QDQ quantization with ONNX Runtime's quantizer; written atomically.

    Activation ranges come from edgekd's calibrators (:mod:`edgekd.calibrate`), handed to ONNX
    Runtime as its calibration cache, so every QDQ backend sees the same ranges; ``cache_path``
    keeps them beside the artifact. ``nodes_to_exclude`` stay in float (sensitivity analysis).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from edgekd.calibrate import calibrate, calibrator_for, write_cache
    from edgekd.errors import ConfigError

    try:
        calibrator = calibrator_for(method, percentile)
    except ConfigError as exc:
        raise CompileError(f"onnxruntime: {exc}") from exc
    options = {"ActivationSymmetric": symmetric_activations, "WeightSymmetric": True, **(extra_options or {})}
    with tempfile.TemporaryDirectory() as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        ranges = calibrate(pre, calib, calibrator, symmetric=symmetric_activations, batch=static_batch or 32,
                           static=static_batch is not None)
        if cache_path is not None:
            write_cache(ranges, cache_path)
        ort_cache = ranges.to_onnxruntime(Path(tmp) / "ort-calibration.json")
        quantize_static(
            str(pre), str(out), None,
            quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=QuantType.QInt8 if symmetric_activations else QuantType.QUInt8,
            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=nodes_to_exclude or [], extra_options=options,
            calibration_cache_path=str(ort_cache),
        )
        from edgekd._io import write_bytes

        return write_bytes(out_path, out.read_bytes())


def qdq_summary(path: Path) -> dict:
    """Which weighted layers read quantized inputs, which stayed float, and the activation ranges."""
    graph = onnx.load(str(path)).graph
    producers = {out: node for node in graph.node for out in node.output}
    inits = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
    quantized, kept_float = [], []
    for node in graph.node:
        if node.op_type not in _WEIGHTED:
            continue
        feeds = [producers.get(name) for name in node.input[:2]]
        if all(f is not None and f.op_type == "DequantizeLinear" for f in feeds):
            quantized.append(node.name)
        else:
            kept_float.append({"layer": node.name, "op": node.op_type, "reason": "no Q/DQ on its inputs"})
    ranges = {}
    for node in graph.node:
        if node.op_type == "QuantizeLinear" and node.input[1] in inits:
            scale = inits[node.input[1]]
            zero = inits[node.input[2]] if len(node.input) > 2 and node.input[2] in inits else np.zeros(1)
            ranges[node.input[0]] = {"scale": scale.tolist(), "zero_point": zero.tolist(), "dtype": str(zero.dtype)}
    return {"quantized_layers": quantized, "kept_float": kept_float, "activation_ranges": ranges}


def runtime_ops(path: Path) -> dict[str, int]:
    """The operators ONNX Runtime actually runs after its graph optimizations (e.g. QLinearConv)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        so.log_severity_level = 3  # the dump is for inspection only; silence its portability warning
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return op_inventory(Path(so.optimized_model_filepath))


class OnnxRuntimeRunner:
    backend = "onnxruntime"

    def __init__(self, artifact: Artifact, threads: int = 1):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.artifact = artifact
        self.threads = threads
        self.session = ort.InferenceSession(str(artifact.path), so, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = check_batch(x, self.artifact)
        if self.artifact.static_batch:
            return run_in_static_batches(self._run, x, self.artifact.static_batch)
        return self._run(x)


def _qat_format(model, fmt, backend: str = "onnxruntime") -> bool:
    """True for a QAT-prepared model; its format must be the target's."""
    from edgekd.quant import is_qat_model

    if not is_qat_model(model):
        return False
    trained = getattr(model, "edgekd_qat", {}).get("format")
    if trained is not None and trained != fmt.model_dump():
        raise CompileError(f"{backend}: the student was trained quantization-aware for {trained}, "
                           f"but the target's format is {fmt.model_dump()}; prepare QAT for this target")
    return True


def _float_twin(model):
    from edgekd.quant import to_float

    return to_float(model)


class OnnxRuntimeBackend:
    name = "onnxruntime"
    accepts_qat = True  # exports a QAT student's learned scales as QDQ (no re-calibration)

    def is_available(self) -> tuple[bool, str]:
        try:
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
        qat = _qat_format(model, fmt)
        from edgekd.compile_command import fp32_onnx_of  # a user's ONNX file is used as it is

        fp32 = fp32_onnx_of(model, input_shape, out_dir / "model.fp32.onnx", static) or \
            export_onnx(_float_twin(model) if qat else model, input_shape, out_dir / "model.fp32.onnx", static)
        files = {"fp32": fp32.name}
        details: dict = {"exported_ops": op_inventory(fp32)}
        if fmt.is_quantized and qat:  # QAT student: export its learned scales, no re-calibration
            from edgekd.quant import export_qdq

            main = export_qdq(model, input_shape, out_dir / "model.onnx", static)
            details.update(qdq_summary(main), quantization="qat (learned LSQ scales, BatchNorm folded)")
            precision = "int8"
        elif fmt.is_quantized:
            if calib is None or len(calib) == 0:
                raise CompileError("onnxruntime int8: calibration data is empty")
            main = quantize_qdq(fp32, out_dir / "model.onnx", calib,
                                method=recipe.method if recipe else "minmax",
                                percentile=recipe.percentile if recipe else 99.99,
                                symmetric_activations=fmt.activation_symmetric,
                                per_channel=fmt.weight_granularity == "per_channel", static_batch=static,
                                cache_path=out_dir / CACHE_FILENAME, nodes_to_exclude=keep_float)
            files["calibration_cache"] = CACHE_FILENAME
            details.update(qdq_summary(main))
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


BACKEND = OnnxRuntimeBackend()
