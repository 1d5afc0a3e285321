"""Post-training int8 QDQ: ONNX Runtime's static quantizer, configured by the target's numeric format.

Every QDQ backend (ONNX Runtime, OpenVINO, QNN, TensorRT) quantizes with one call::

    config = QDQConfig.from_target(target, recipe)
    quantize_onnx(fp32_onnx, out_dir / "model.onnx", calib, config, cache_path=...)

:class:`QDQConfig` is frozen and built from the target's ``[format]`` table: each field is honoured
or rejected with a :class:`~edgekd.errors.ConfigError` naming it (see :meth:`QDQConfig.from_format`).
Activation ranges come from edgekd's calibrators (:mod:`edgekd.calibrate`), handed to ONNX Runtime
as its calibration cache, so every QDQ backend sees the same ranges.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx

from edgekd._io import write_bytes
from edgekd.calibrate import Ranges, calibrate, calibrator_for, write_cache
from edgekd.errors import CompileError, ConfigError
from edgekd.quant.bias_correction import correct_biases
from edgekd.quant.cpu import x86_without_vnni
from edgekd.quant.float_guard import guard_float_layers
from edgekd.quant.qat import is_qat_model
from edgekd.schema.student import card_of
from edgekd.targets import CalibrationRecipe, NumericFormat, Target

_WEIGHTED = {"Conv", "Gemm", "MatMul", "ConvTranspose"}
BIAS_CORRECTION_KEY = "edgekd.bias_correction"  # model metadata: what bias correction did
# Without a recipe, calibration is the recipe schema's default (min-max), on every QDQ backend.
_DEFAULT_RECIPE = CalibrationRecipe(name="default")


@dataclass(frozen=True)
class QDQConfig:
    """How a float ONNX graph is quantized to int8 QDQ.

    Attributes:
        activations: "uint8" (a zero point, ONNX Runtime's CPU kernels) or "int8".
        activation_symmetric: activation zero points fixed at 0 (ranges symmetric around 0).
        weight_symmetric: weight zero points fixed at 0. ONNX Runtime makes per-channel weights
            symmetric whatever it is told, so asymmetric weights need ``per_channel=False``.
        per_channel: one weight scale per output channel, else one per tensor.
        method, percentile: the edgekd calibrator that picks activation ranges.
        quantize_bias: False keeps biases in float (TensorRT's explicit quantization wants that).
        bias_correction: take each layer's mean weight-rounding error, ``(W_q - W)·E[x]`` on the
            calibration data, out of its bias (:mod:`edgekd.quant.bias_correction`).
        float_guard: feed layers kept in float through a per-channel DequantizeLinear so that ONNX
            Runtime does not quantize their weights (:mod:`edgekd.quant.float_guard`); off for
            TensorRT, whose explicit quantization takes per-tensor activation scales only.
        weight_reduce_range: 7-bit weights (|q| <= 64): on x86 without VNNI, ONNX Runtime's int8
            kernels sum u8×s8 pairs in saturating int16, which 8-bit weights can overflow.
    """

    activations: Literal["uint8", "int8"] = "uint8"
    activation_symmetric: bool = False
    weight_symmetric: bool = True
    per_channel: bool = True
    method: str = _DEFAULT_RECIPE.method
    percentile: float = _DEFAULT_RECIPE.percentile
    quantize_bias: bool = True
    bias_correction: bool = False
    float_guard: bool = True
    weight_reduce_range: bool = False

    @property
    def weight_bits(self) -> int:
        return 7 if self.weight_reduce_range else 8

    def __post_init__(self):
        if self.activations not in ("uint8", "int8"):
            raise ConfigError(f"QDQ: activations {self.activations!r} are not int8 or uint8")
        if self.activations == "uint8" and self.activation_symmetric:
            raise ConfigError("QDQ: uint8 activations cannot be symmetric (a zero point of 0 leaves no negative "
                              "values); use activations = \"int8\" or activation_symmetric = false")
        if self.per_channel and not self.weight_symmetric:
            raise ConfigError("QDQ: ONNX Runtime's quantizer makes per-channel weights symmetric (its QLinear "
                              "kernels need one zero point per tensor); set weight_symmetric = true, or "
                              "weight_granularity = \"per_tensor\" for asymmetric weights")
        calibrator_for(self.method, self.percentile)  # an unknown method fails here, listing the valid ones

    @classmethod
    def from_format(cls, fmt: NumericFormat, recipe: CalibrationRecipe | None = None, **overrides) -> "QDQConfig":
        """The config a numeric format asks for; ``overrides`` set fields a backend fixes (e.g. biases).

        Every format field is honoured: ``weights`` must be int8 (4- and 2-bit weights come from
        quantization-aware training), ``activations`` int8 or uint8 (no weight-only or 4-bit
        activation PTQ), and ``weight_granularity``, ``weight_symmetric`` and
        ``activation_symmetric`` are passed on; what the quantizer cannot do is a ConfigError.
        Without ``recipe``, activation ranges are min-max.

        Raises:
            ConfigError: a field this quantizer cannot honour, naming it and what to set.
        """
        if fmt.weights != "int8":
            raise ConfigError(f"format {fmt.key}: weights = {fmt.weights!r}: post-training QDQ quantizes int8 "
                              "weights only; use weights = \"int8\", or train quantization-aware for int4/int2")
        if fmt.activations not in ("uint8", "int8"):
            raise ConfigError(f"format {fmt.key}: activations = {fmt.activations!r}: post-training QDQ quantizes "
                              "int8 or uint8 activations only (no weight-only or 4-bit activation PTQ)")
        recipe = recipe or _DEFAULT_RECIPE
        fields = dict(activations=fmt.activations, activation_symmetric=fmt.activation_symmetric,
                      weight_symmetric=fmt.weight_symmetric, per_channel=fmt.weight_granularity == "per_channel",
                      method=recipe.method, percentile=recipe.percentile, bias_correction=recipe.bias_correction,
                      weight_reduce_range=reduce_range_here(fmt.weight_reduce_range))
        try:
            return cls(**{**fields, **overrides})
        except ConfigError as exc:
            raise ConfigError(f"format {fmt.key}: {exc}") from None

    @classmethod
    def from_target(cls, target: Target, recipe: CalibrationRecipe | None = None, **overrides) -> "QDQConfig":
        """:meth:`from_format` of the target's ``[format]``; errors name the target."""
        try:
            return cls.from_format(target.format, recipe, **overrides)
        except ConfigError as exc:
            raise ConfigError(f"target {target.name}: {exc}") from None


def reduce_range_here(setting: bool | str) -> bool:
    """A format's ``weight_reduce_range`` on this machine: ``"auto"`` is on for x86 without VNNI.

    There ONNX Runtime's fused int8 kernels lost 20-27 points of top-1 agreement with fp32 on small
    CNNs (AMD EPYC, AVX2) with 8-bit weights; with 7-bit weights fused and unfused runs agree.
    """
    return x86_without_vnni() if setting == "auto" else bool(setting)


def quantize_onnx(fp32_path: Path, out_path: Path, calib: np.ndarray, config: QDQConfig = QDQConfig(), *,
                  static_batch: int | None = None, cache_path: Path | None = None,
                  keep_float: list[str] | None = None, ranges: Ranges | None = None) -> Path:
    """Static int8 QDQ quantization of an fp32 ONNX file with ONNX Runtime's quantizer; written atomically.

    Args:
        fp32_path: the float model.
        out_path: the QDQ model to write.
        calib: float32 NCHW calibration samples.
        config: what to quantize and how (:meth:`QDQConfig.from_target`).
        static_batch: the graph's fixed batch size, if it has one (calibration feeds that many).
        cache_path: also keep the activation ranges there (edgekd's calibration cache).
        keep_float: node names left in float (sensitivity analysis).
        ranges: activation ranges already calibrated on this graph (skips calibration; the sensitivity
            analysis quantizes the same graph once per layer).
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static  # heavy SDK
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calib is None or len(calib) == 0:
        raise CompileError("QDQ int8: calibration data is empty")
    options = {"ActivationSymmetric": config.activation_symmetric, "WeightSymmetric": config.weight_symmetric}
    if not config.quantize_bias:
        options["QuantizeBias"] = False
    calibrator = calibrator_for(config.method, config.percentile)
    with tempfile.TemporaryDirectory() as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        if ranges is None:
            ranges = calibrate(pre, calib, calibrator, symmetric=config.activation_symmetric,
                               batch=static_batch or 32, static=static_batch is not None)
        if cache_path is not None:
            write_cache(ranges, cache_path)
        ort_cache = ranges.to_onnxruntime(Path(tmp) / "ort-calibration.json")
        quantize_static(
            str(pre), str(out), None,
            quant_format=QuantFormat.QDQ, per_channel=config.per_channel,
            activation_type=QuantType.QInt8 if config.activations == "int8" else QuantType.QUInt8,
            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=list(keep_float or []), extra_options=options, reduce_range=config.weight_reduce_range,
            calibration_cache_path=str(ort_cache),
        )
        if not (config.bias_correction or keep_float):
            return write_bytes(out_path, out.read_bytes())
        model = onnx.load(str(out))
        if config.float_guard:
            guard_float_layers(model, list(keep_float or []))  # else ONNX Runtime quantizes them per tensor
        if config.bias_correction:
            summary = correct_biases(model, pre, calib, batch=static_batch or 32, static=static_batch is not None)
            onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                                BIAS_CORRECTION_KEY: json.dumps(summary)})
        return write_bytes(out_path, model.SerializeToString())


def qdq_summary(path: Path) -> dict:
    """Which weighted layers read quantized inputs, which stayed float, and the activation ranges."""
    model = onnx.load(str(path))
    graph = model.graph
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
    summary = {"quantized_layers": quantized, "kept_float": kept_float, "activation_ranges": ranges}
    corrected = {p.key: p.value for p in model.metadata_props}.get(BIAS_CORRECTION_KEY)
    if corrected is not None:
        summary["bias_correction"] = json.loads(corrected)
    return summary


def qat_student(model, fmt: NumericFormat, backend: str) -> bool:
    """True for a QAT-prepared student (its learned scales export as QDQ, no re-calibration).

    Raises:
        CompileError: the student was trained quantization-aware for another format.
    """
    if not is_qat_model(model):
        return False
    trained = (card_of(model).qat or {}).get("format")
    if trained is not None and trained != fmt.model_dump():
        raise CompileError(f"{backend}: the student was trained quantization-aware for {trained}, "
                           f"but the target's format is {fmt.model_dump()}; prepare QAT for this target")
    return True
