"""TensorRT (CUDA): an explicit-quantization QDQ ONNX placed as TensorRT wants it, then an engine.

The QDQ ONNX follows TensorRT's placement rules: Q/DQ on both inputs of every weighted layer,
per-channel symmetric int8 weights, symmetric per-tensor int8 activations (zero points 0), and
quantized inputs on residual ``Add``. It is checked structurally (:func:`check_placement`) and
numerically in ONNX Runtime at compile time. The engine is built with the ``tensorrt`` Python
API where TensorRT and an NVIDIA GPU are present; elsewhere the artifact is the ONNX and the
report says "engine not built: needs TensorRT and an NVIDIA GPU".
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import torch

from edgekd._io import write_bytes
from edgekd.backends.base import Artifact, Backend, BaseRunner
from edgekd.backends.onnxruntime import OnnxRuntimeRunner
from edgekd.calibrate.cache import CACHE_FILENAME
from edgekd.errors import CompileError, ConfigError, NotRunHere
from edgekd.onnx_export import export_onnx, op_inventory
from edgekd.ort_session import ort_session
from edgekd.quant.qdq import QDQConfig, qdq_summary, quantize_onnx

log = logging.getLogger(__name__)
NO_ENGINE = "engine not built: needs TensorRT and an NVIDIA GPU"
_WEIGHTED = ("Conv", "Gemm", "MatMul", "ConvTranspose")
MAX_BATCH = 64  # the optimization profile's upper batch bound


def tensorrt_status() -> tuple[bool, str]:
    try:
        import tensorrt  # noqa: F401  heavy SDK: imported on first use
    except ImportError:
        return False, f"{NO_ENGINE} (the tensorrt package is not importable)"
    if not torch.cuda.is_available():
        return False, f"{NO_ENGINE} (no CUDA device visible to torch)"
    return True, ""


def check_placement(path: Path) -> list[str]:
    """Where a QDQ ONNX breaks TensorRT's explicit-quantization placement; empty when it conforms."""
    graph = onnx.load(str(path)).graph
    producers = {o: n for n in graph.node for o in n.output}
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    consts = {n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t) for n in graph.node
              if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    inits.update(consts)
    problems = []

    def dq_of(name):
        node = producers.get(name)
        return node if node is not None and node.op_type == "DequantizeLinear" else None

    for node in graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            scale = inits.get(node.input[1])
            zero = inits.get(node.input[2]) if len(node.input) > 2 else None
            if zero is not None and (zero.dtype != np.int8 or np.any(zero != 0)):
                problems.append(f"{node.name}: zero point {zero.dtype} {zero.ravel()[:4]} is not symmetric int8")
            if scale is not None and scale.size > 1 and not (node.input[0] in inits or _is_weight(node, producers,
                                                                                                  inits)):
                problems.append(f"{node.name}: per-channel scale on an activation")
        elif node.op_type in _WEIGHTED:
            x_dq, w_dq = dq_of(node.input[0]), dq_of(node.input[1])
            if x_dq is None:
                problems.append(f"{node.name} ({node.op_type}): input is not quantized")
            if w_dq is None:
                problems.append(f"{node.name} ({node.op_type}): weight is not quantized")
            elif node.op_type == "Conv" and inits.get(w_dq.input[1]) is not None and inits[w_dq.input[1]].size == 1:
                problems.append(f"{node.name}: weight scale is per-tensor, TensorRT wants per-channel")
        elif node.op_type == "Add" and not all(n in inits for n in node.input):
            for i in node.input:
                if i not in inits and dq_of(i) is None:
                    problems.append(f"{node.name} (Add): input {i!r} is not quantized (residual add)")
    return problems


def _is_weight(dq, producers, inits) -> bool:
    src = producers.get(dq.input[0])
    return src is not None and src.op_type == "QuantizeLinear" and src.input[0] in inits


def onnxruntime_check(qdq: Path, fp32: Path, x: np.ndarray) -> dict:
    """The QDQ model run in ONNX Runtime against the fp32 ONNX: the numeric check done here.

    The QDQ graph runs unfused (DequantizeLinear → float op → QuantizeLinear): the exact rounding and
    clipping TensorRT's int8 math follows. Fused, ONNX Runtime would use this CPU's int8 kernels, which
    on x86 without VNNI sum u8×s8 pairs in saturating int16 (top-1 agreement 38 % instead of 98 % on a
    small add/concat net, AMD EPYC AVX2): a defect of this CPU, not of the engine being checked.
    """
    import onnxruntime as ort  # heavy SDK: imported on first use (for its version)

    def run(path, optimize: bool):
        sess = ort_session(path, optimize=optimize)
        return sess.run(None, {sess.get_inputs()[0].name: x})[0]

    a, b = run(qdq, False), run(fp32, True)
    return {"runtime": f"onnxruntime {ort.__version__} CPU, QDQ unfused (stands in for TensorRT's int8 math)",
            "samples": len(x),
            "top1_agreement_fp32": float((a.argmax(1) == b.argmax(1)).mean()),
            "max_abs_diff_fp32": float(np.abs(a - b).max())}


def explicit_quantization(target, recipe=None) -> QDQConfig:
    """The QDQ config of TensorRT's explicit quantization: the target's format must already say
    symmetric int8 activations and symmetric per-channel weights; biases stay float.

    Raises:
        ConfigError: the target's format asks for something TensorRT's placement rules reject.
    """
    config = QDQConfig.from_target(target, recipe, quantize_bias=False, float_guard=False)
    if config.activations != "int8" or not config.activation_symmetric or not config.per_channel:
        raise ConfigError(f"target {target.name}: tensorrt's explicit quantization needs activations = \"int8\", "
                          "activation_symmetric = true and weight_granularity = \"per_channel\" in [format]")
    return config


def build_engine(onnx_path: Path, engine_path: Path, input_shape, precision: str, static: int | None) -> Path:
    """Build a serialized TensorRT engine from ONNX (QDQ for int8: explicit, strongly typed)."""
    # heavy SDK: imported on first use
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if precision == "int8" else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CompileError(f"tensorrt: the ONNX parser rejected {onnx_path.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 30)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    lo, hi = (static, static) if static else (1, MAX_BATCH)
    profile.set_shape(name, (lo, *input_shape), (lo, *input_shape), (hi, *input_shape))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise CompileError(f"tensorrt: engine build failed for {onnx_path.name} ({precision})")

    return write_bytes(engine_path, bytes(serialized))


class TensorRtRunner(BaseRunner):
    backend = "tensorrt"

    def __init__(self, artifact: Artifact, threads: int = 1):
        super().__init__(artifact)
        if artifact.details.get("engine") != "built":
            raise NotRunHere(f"tensorrt: not run here: {artifact.details.get('engine', NO_ENGINE)}")
        ok, why = tensorrt_status()
        if not ok:
            raise NotRunHere(f"tensorrt: not run here: {why}")
        import tensorrt as trt  # heavy SDK: imported on first use

        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(artifact.path).read_bytes())
        self.context = self.engine.create_execution_context()
        self.input, self.output = self.engine.get_tensor_name(0), self.engine.get_tensor_name(1)

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(x).cuda()
        self.context.set_input_shape(self.input, tuple(x.shape))
        y = torch.empty(tuple(self.context.get_tensor_shape(self.output)), device="cuda")
        self.context.set_tensor_address(self.input, x.data_ptr())
        self.context.set_tensor_address(self.output, y.data_ptr())
        stream = torch.cuda.current_stream()
        self.context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return y.cpu().numpy()


class TensorRtBackend(Backend):
    """Builds the QDQ ONNX everywhere; the engine only where TensorRT and a GPU are present."""

    name = "tensorrt"

    def is_available(self) -> tuple[bool, str]:
        return tensorrt_status()

    def compile(self, model, target, calib, out_dir: Path, spec, recipe=None, keep_float=None) -> Artifact:
        fmt, out_dir = target.format, Path(out_dir)
        if fmt.weights not in ("fp32", "fp16", "int8"):
            raise CompileError(f"tensorrt: weights {fmt.weights} are not supported; use fp32, fp16 or int8")
        static = target.shapes.static_batch if target.shapes.batch == "static" else None
        input_shape = tuple(spec.input_shape)
        fp32 = export_onnx(model, input_shape, out_dir / "model.fp32.onnx", static)
        files, details = {"fp32": fp32.name}, {"exported_ops": op_inventory(fp32)}
        onnx_model, precision = fp32, fmt.weights
        if fmt.is_quantized:
            config = explicit_quantization(target, recipe)
            onnx_model = quantize_onnx(fp32, out_dir / "model.qdq.onnx", calib, config, static_batch=static,
                                       cache_path=out_dir / CACHE_FILENAME, keep_float=keep_float)
            problems = check_placement(onnx_model)
            if problems:
                raise CompileError("tensorrt: QDQ placement breaks TensorRT's rules: " + "; ".join(problems[:5]))
            files.update(qdq_onnx=onnx_model.name, calibration_cache=CACHE_FILENAME)
            details.update(qdq_summary(onnx_model), placement_check="passed (onnx graph walk)",
                           onnxruntime_check=onnxruntime_check(onnx_model, fp32, calib[: min(256, len(calib))]))
            details["graphsurgeon_ops"] = _graphsurgeon_ops(onnx_model)
        ok, why = tensorrt_status()
        if ok:
            main = build_engine(onnx_model, out_dir / "model.engine", input_shape, precision, static)
            details["engine"] = "built"
            details["reproducible"] = {"bit_identical": False, "why": "TensorRT picks kernels (tactics) by timing "
                                       "them on the GPU while building the engine; the ONNX files are identical"}
        else:
            main, details["engine"] = onnx_model, why
            details["reproducible"] = {"bit_identical": True}
        files["model"] = main.name
        return Artifact(path=main, backend=self.name, target=target.name, precision=precision,
                        input_shape=input_shape, static_batch=static, files=files, details=details)

    def load(self, artifact: Artifact, threads: int = 1) -> TensorRtRunner:
        return TensorRtRunner(artifact, threads)

    def reference(self, artifact: Artifact, threads: int = 1):
        """(runner, label) where no engine runs: the explicit-quantization QDQ ONNX the int8 engine is
        built from, in ONNX Runtime's CPU kernels. None for fp16/fp32 (the fp32 ONNX says nothing new)."""
        if artifact.details.get("engine") == "built" or "qdq_onnx" not in artifact.files:
            return None
        qdq = replace(artifact, path=Path(artifact.folder) / artifact.files["qdq_onnx"])
        return OnnxRuntimeRunner(qdq, threads), ("ONNX Runtime CPU running the QDQ ONNX the TensorRT engine is "
                                                 "built from (not TensorRT)")


def _graphsurgeon_ops(path: Path) -> dict | str:
    """The op inventory as onnx-graphsurgeon sees it after cleanup (what TensorRT's parser gets)."""
    try:
        # heavy SDK: imported on first use
        import onnx_graphsurgeon as gs
    except ImportError:
        return "onnx-graphsurgeon not installed (pip install 'edgekd[tensorrt]')"
    graph = gs.import_onnx(onnx.load(str(path)))
    graph.cleanup().toposort()
    counts: dict[str, int] = {}
    for node in graph.nodes:
        counts[node.op] = counts.get(node.op, 0) + 1
    return dict(sorted(counts.items()))


BACKEND = TensorRtBackend()
