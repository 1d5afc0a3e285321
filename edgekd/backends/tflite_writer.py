"""The int8 TFLite flatbuffer: quantization parameters and a builder of tensors and operators.

Follows the TFLite int8 quantization spec (activations asymmetric int8 per tensor, weights symmetric
int8 per output channel); :mod:`edgekd.backends.tflite_int8` converts an ONNX graph with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekd.errors import require

# Bias of a dead channel (all-zero weights) must still fit int32 at scale s_in·s_w: keep it ~2^30.
_BIAS_HEADROOM = 2.0**30
# Operator versions TFLite's own converter writes for these int8 kernels.
_VERSIONS = {"CONV_2D": 3, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 4, "ADD": 2, "MEAN": 2, "RESHAPE": 1,
             "AVERAGE_POOL_2D": 2, "MAX_POOL_2D": 2, "CONCATENATION": 2, "PAD": 2, "RELU": 2, "RELU6": 2,
             "QUANTIZE": 2}


@dataclass(frozen=True)
class QParams:
    scale: float
    zero_point: int

    def quantize(self, x: np.ndarray) -> np.ndarray:
        return np.clip(np.round(x / self.scale) + self.zero_point, -128, 127).astype(np.int8)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        return (q.astype(np.float32) - self.zero_point) * self.scale


def activation_qparams(lo: float, hi: float) -> QParams:
    """Asymmetric int8 for a float range; the range always holds 0 so zero padding is exact."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(np.round(-128 - lo / scale), -128, 127))
    return QParams(scale, zero_point)


def weight_scales(w: np.ndarray, axis: int, bias: np.ndarray | None, s_in: float) -> np.ndarray:
    """Symmetric per-channel scales (±127); a dead channel gets a scale that keeps its bias in int32."""
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    scales = np.abs(w).max(axis=reduce).astype(np.float64) / 127.0
    if bias is not None:
        scales = np.maximum(scales, np.abs(bias.astype(np.float64)) / (s_in * _BIAS_HEADROOM))
    return np.where(scales > 0, scales, 1.0)  # all-zero weights and bias: any scale is exact


class TFLiteBuilder:
    """A TFLite model built tensor by tensor and operator by operator, packed with the schema bindings
    that ship in ``ai-edge-litert``."""

    def __init__(self):
        self.s = require("ai_edge_litert.schema_py_generated", "ethosu")
        self.buffers = [self.s.BufferT()]  # buffer 0: the empty buffer every non-constant tensor uses
        self.tensors, self.operators, self.opcodes = [], [], {}

    def tensor(self, name: str, shape, dtype: str, data: np.ndarray | None = None,
               scale=None, zero_point=None, axis: int = 0) -> int:
        t = self.s.TensorT()
        t.name, t.shape = name, [int(d) for d in shape]
        t.type = {"int8": self.s.TensorType.INT8, "int32": self.s.TensorType.INT32}[dtype]
        if data is not None:
            buf = self.s.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = self.s.QuantizationParametersT()
            q.scale = [float(v) for v in np.atleast_1d(scale)]
            q.zeroPoint = [int(v) for v in np.atleast_1d(zero_point if zero_point is not None else 0)]
            q.quantizedDimension = axis
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def activation(self, name: str, shape, q: QParams) -> int:
        return self.tensor(name, shape, "int8", scale=q.scale, zero_point=q.zero_point)

    def op(self, kind: str, inputs, outputs, options_name: str | None = None, **options) -> None:
        code = getattr(self.s.BuiltinOperator, kind)
        if code not in self.opcodes:
            oc = self.s.OperatorCodeT()
            oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), _VERSIONS.get(kind, 1)
            self.opcodes[code] = (len(self.opcodes), oc)
        o = self.s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = self.opcodes[code][0], list(inputs), list(outputs)
        if options_name is not None:
            opt = getattr(self.s, options_name + "T")()
            for key, value in options.items():
                setattr(opt, key, value)
            o.builtinOptionsType, o.builtinOptions = getattr(self.s.BuiltinOptions, options_name), opt
        self.operators.append(o)

    def finish(self, inputs: list[int], outputs: list[int]) -> bytes:
        import flatbuffers  # installed with ai-edge-litert (the ethosu extra): imported on first use

        sub = self.s.SubGraphT()
        sub.tensors, sub.operators, sub.inputs, sub.outputs, sub.name = (
            self.tensors, self.operators, inputs, outputs, "main")
        model = self.s.ModelT()
        model.version, model.description = 3, "edgekd int8 TFLite writer"
        model.operatorCodes = [oc for _, oc in sorted(self.opcodes.values(), key=lambda p: p[0])]
        model.subgraphs, model.buffers = [sub], self.buffers
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())
