"""ONNX (fp32, static batch) + edgekd calibration ranges → a fully int8 TFLite model.

Our own writer, so the Ethos-U route needs no TensorFlow or litert-torch (litert-torch pulls jax
and downgrades typing_extensions, which breaks coremltools in the same environment). It follows
the TFLite int8 quantization spec: activations asymmetric int8 per tensor, weights symmetric int8
per output channel (zero point 0, range ±127), bias int32 at scale ``s_in · s_w``. Inputs and
outputs are int8 NHWC, as microcontroller apps feed them. Conv/Gemm/Add followed by their only
consumer Relu or Clip(0, 6) become one operator with a fused activation, as TFLite's converter
does. The flatbuffer is written with the schema bindings that ship in ``ai-edge-litert``.

Operators: Conv (plain and depthwise), Gemm, Add, Concat, Relu, Clip(0, 6), GlobalAveragePool,
ReduceMean over H and W, AveragePool, MaxPool, Flatten/Reshape; anything else is a
:class:`CompileError` naming the node. Running the result: :mod:`edgekd.backends.tflite_runtime`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgekd._io import write_bytes

from edgekd.backends.tflite_writer import QParams, TFLiteBuilder, activation_qparams, weight_scales
from edgekd.errors import CompileError

__all__ = ["QParams", "onnx_to_int8_tflite"]

INT32_MAX = 2**31 - 1
_NCHW_TO_NHWC_AXIS = {0: 0, 1: 3, 2: 1, 3: 2}


@dataclass
class _Value:
    """An ONNX tensor as written: its TFLite tensor index, NHWC shape and quantization."""

    index: int
    shape: tuple[int, ...]
    q: QParams
    flattened_chw: tuple[int, int, int] | None = None  # set when a (C, H, W) map was flattened in NHWC order


def _nhwc(shape) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    return (shape[0], shape[2], shape[3], shape[1]) if len(shape) == 4 else shape


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TFLite's SAME padding (before, after) along one axis."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class _Converter:
    def __init__(self, model: onnx.ModelProto, ranges: dict[str, tuple[float, float]], name: str):
        self.model = onnx.shape_inference.infer_shapes(model)
        self.ranges, self.name = ranges, name
        self.b = TFLiteBuilder()
        g = self.model.graph
        self.const = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.shapes = {}
        for vi in [*g.input, *g.value_info, *g.output]:
            dims = vi.type.tensor_type.shape.dim
            self.shapes[vi.name] = tuple(d.dim_value for d in dims)
        for node in g.node:  # constants first: a Clip's bounds come after the Conv it may fuse into
            if node.op_type == "Constant":
                self.const[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
            elif node.op_type == "Identity" and node.input[0] in self.const:
                self.const[node.output[0]] = self.const[node.input[0]]
        self.consumers: dict[str, list] = {}
        for node in g.node:
            for i in node.input:
                self.consumers.setdefault(i, []).append(node)
        self.outputs = {o.name for o in g.output}
        self.ranges = _shared_concat_ranges(g, dict(ranges))
        self.values: dict[str, _Value] = {}
        self.fused: set[str] = set()  # outputs of activation nodes folded into their producer

    # -- helpers ------------------------------------------------------------------------------
    def _fail(self, node, why: str):
        kind = getattr(node, "op_type", "graph input")
        raise CompileError(f"{self.name}: ONNX node {node.name or kind!r} ({kind}): {why}")

    def q(self, tensor: str, node) -> QParams:
        if tensor not in self.ranges:
            self._fail(node, f"no calibration range for tensor {tensor!r}")
        return activation_qparams(*self.ranges[tensor])

    def value(self, tensor: str, node) -> _Value:
        if tensor not in self.values:
            self._fail(node, f"input {tensor!r} is not produced by a supported operator")
        return self.values[tensor]

    def constant(self, tensor: str, node) -> np.ndarray:
        if tensor not in self.const:
            self._fail(node, f"{tensor!r} must be a constant (weights are folded at export)")
        return self.const[tensor]

    def _activation_of(self, node) -> tuple[int, str]:
        """(TFLite fused activation, the ONNX tensor it writes) when node's only consumer is Relu/Relu6."""
        acts = self.b.s.ActivationFunctionType
        out = node.output[0]
        users = self.consumers.get(out, [])
        if out in self.outputs or len(users) != 1:
            return acts.NONE, out
        user = users[0]
        kind = self._relu_kind(user)
        if kind is None:
            return acts.NONE, out
        self.fused.add(user.output[0])
        return (acts.RELU6 if kind == "RELU6" else acts.RELU), user.output[0]

    def _relu_kind(self, node) -> str | None:
        if node.op_type == "Relu":
            return "RELU"
        if node.op_type != "Clip":
            return None
        a = _attrs(node)
        bounds = []
        for i, (key, default) in enumerate((("min", -np.inf), ("max", np.inf)), start=1):
            if len(node.input) > i and node.input[i]:
                if node.input[i] not in self.const:
                    return None  # a bound computed at run time: not an activation TFLite can fuse
                bounds.append(float(self.const[node.input[i]]))
            else:
                bounds.append(float(a.get(key, default)))
        lo, hi = bounds
        if lo == 0.0 and hi == 6.0:
            return "RELU6"
        if lo == 0.0 and np.isinf(hi):
            return "RELU"
        return None

    def _emit(self, onnx_name: str, shape, q: QParams, flattened=None) -> int:
        index = self.b.activation(onnx_name, shape, q)
        self.values[onnx_name] = _Value(index, tuple(shape), q, flattened)
        return index

    # -- operators ----------------------------------------------------------------------------
    def convert(self) -> bytes:
        g = self.model.graph
        inits = set(self.const)
        graph_inputs = [i for i in g.input if i.name not in inits]
        if len(graph_inputs) != 1 or len(g.output) != 1:
            raise CompileError(f"{self.name}: one input and one output expected, got "
                               f"{len(graph_inputs)} and {len(g.output)}")
        src = graph_inputs[0]
        shape = self.shapes[src.name]
        if len(shape) != 4 or any(d <= 0 for d in shape):
            raise CompileError(f"{self.name}: input {src.name!r} must be a static NCHW shape, got {shape}")
        in_index = self._emit(src.name, _nhwc(shape), self.q(src.name, src))
        for node in g.node:
            if node.output and node.output[0] in self.fused:
                continue
            handler = getattr(self, "_" + node.op_type, None)
            if handler is None:
                self._fail(node, "operator not supported by the int8 TFLite writer (Ethos-U target)")
            handler(node)
        out = self.value(g.output[0].name, g.output[0])
        if out.flattened_chw is not None and out.flattened_chw[1] * out.flattened_chw[2] > 1:
            raise CompileError(f"{self.name}: the output is a flattened feature map whose element order differs "
                               "between NCHW and NHWC; end the model with a linear layer")
        return self.b.finish([in_index], [out.index])

    def _Identity(self, node):
        if node.input[0] not in self.const:
            self.values[node.output[0]] = self.value(node.input[0], node)

    def _Constant(self, node):
        pass  # read in __init__

    def _Conv(self, node):
        a = _attrs(node)
        x = self.value(node.input[0], node)
        w = self.constant(node.input[1], node).astype(np.float32)
        bias = self.constant(node.input[2], node).astype(np.float32) if len(node.input) > 2 and node.input[2] \
            else np.zeros(w.shape[0], np.float32)
        if len(x.shape) != 4:
            self._fail(node, "only 2-D convolutions are supported")
        group = int(a.get("group", 1))
        _, height, width, cin = x.shape
        kh, kw = w.shape[2:]
        sh, sw = a.get("strides", [1, 1])
        dh, dw = a.get("dilations", [1, 1])
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            self._fail(node, "auto_pad is not supported; export with explicit pads")
        x_index, height, width = self._pad_for(node, x, pads, (height, width), (kh, kw), (sh, sw), (dh, dw))
        fused, out_name = self._activation_of(node)
        out_shape = _nhwc(self.shapes[node.output[0]])
        q_out = self.q(out_name, node)
        padding = self._padding
        if group == 1:
            scales = weight_scales(w, 0, bias, x.q.scale)
            wq = np.clip(np.round(w / scales[:, None, None, None]), -127, 127).astype(np.int8).transpose(0, 2, 3, 1)
            kind, options_name, axis = "CONV_2D", "Conv2DOptions", 0
            extra = {}
        elif group == cin and w.shape[1] == 1:
            scales = weight_scales(w, 0, bias, x.q.scale)
            wq = np.clip(np.round(w / scales[:, None, None, None]), -127, 127).astype(np.int8).transpose(1, 2, 3, 0)
            kind, options_name, axis = "DEPTHWISE_CONV_2D", "DepthwiseConv2DOptions", 3
            extra = {"depthMultiplier": w.shape[0] // cin}
        else:
            self._fail(node, f"grouped convolution (group={group}) is not supported; use plain or depthwise")
        bq = np.clip(np.round(bias.astype(np.float64) / (x.q.scale * scales)), -INT32_MAX, INT32_MAX).astype(np.int32)
        w_index = self.b.tensor(node.input[1] + "/int8", wq.shape, "int8", wq, scales, np.zeros(len(scales)), axis)
        b_index = self.b.tensor(node.output[0] + "/bias", bq.shape, "int32", bq, x.q.scale * scales,
                                np.zeros(len(scales)), 0)
        out_index = self._emit(out_name, out_shape, q_out)
        self.b.op(kind, [x_index, w_index, b_index], [out_index], options_name, padding=padding, strideH=sh,
                  strideW=sw, dilationHFactor=dh, dilationWFactor=dw, fusedActivationFunction=fused, **extra)

    def _pad_for(self, node, x: _Value, pads, size, kernel, stride, dilation):
        """SAME or VALID when the ONNX pads match them, else an explicit PAD (zero point) then VALID."""
        s = self.b.s
        top, left, bottom, right = pads[0], pads[1], pads[2], pads[3]
        same = [_same_pads(size[i], kernel[i], stride[i], dilation[i]) for i in range(2)]
        if (top, bottom) == same[0] and (left, right) == same[1]:
            self._padding = s.Padding.SAME
            return x.index, size[0], size[1]
        self._padding = s.Padding.VALID
        if not any(pads):
            return x.index, size[0], size[1]
        paddings = np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32)
        p_index = self.b.tensor(node.name + "/paddings", paddings.shape, "int32", paddings)
        padded = (x.shape[0], size[0] + top + bottom, size[1] + left + right, x.shape[3])
        out = self.b.activation(node.input[0] + "/padded", padded, x.q)
        self.b.op("PAD", [x.index, p_index], [out], "PadOptions")
        return out, padded[1], padded[2]

    def _Gemm(self, node):
        a = _attrs(node)
        if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
            self._fail(node, "only Gemm with alpha = beta = 1 and no transA (a linear layer) is supported")
        x = self.value(node.input[0], node)
        w = self.constant(node.input[1], node).astype(np.float32)
        w = w if a.get("transB", 0) else w.T
        bias = self.constant(node.input[2], node).astype(np.float32).reshape(-1) if len(node.input) > 2 \
            and node.input[2] else np.zeros(w.shape[0], np.float32)
        if x.flattened_chw is not None:  # the input was flattened in NHWC order: reorder the columns to match
            c, h, wd = x.flattened_chw
            w = w.reshape(w.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
        scales = weight_scales(w, 0, bias, x.q.scale)
        wq = np.clip(np.round(w / scales[:, None]), -127, 127).astype(np.int8)
        bq = np.clip(np.round(bias.astype(np.float64) / (x.q.scale * scales)), -INT32_MAX, INT32_MAX).astype(np.int32)
        fused, out_name = self._activation_of(node)
        w_index = self.b.tensor(node.input[1] + "/int8", wq.shape, "int8", wq, scales, np.zeros(len(scales)), 0)
        b_index = self.b.tensor(node.output[0] + "/bias", bq.shape, "int32", bq, x.q.scale * scales,
                                np.zeros(len(scales)), 0)
        out_index = self._emit(out_name, (x.shape[0], w.shape[0]), self.q(out_name, node))
        self.b.op("FULLY_CONNECTED", [x.index, w_index, b_index], [out_index], "FullyConnectedOptions",
                  fusedActivationFunction=fused)

    def _Add(self, node):
        a, c = (self.value(i, node) for i in node.input)
        if a.shape != c.shape:
            self._fail(node, f"broadcasting Add ({a.shape} + {c.shape}) is not supported")
        fused, out_name = self._activation_of(node)
        out_index = self._emit(out_name, a.shape, self.q(out_name, node))
        self.b.op("ADD", [a.index, c.index], [out_index], "AddOptions", fusedActivationFunction=fused)

    def _Relu(self, node):
        x = self.value(node.input[0], node)
        kind = self._relu_kind(node)
        out_index = self._emit(node.output[0], x.shape, self.q(node.output[0], node), x.flattened_chw)
        self.b.op(kind, [x.index], [out_index])

    def _Clip(self, node):
        if self._relu_kind(node) is None:
            self._fail(node, "only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) are supported")
        self._Relu(node)

    def _GlobalAveragePool(self, node):
        x = self.value(node.input[0], node)
        axes = np.array([1, 2], np.int32)
        axes_index = self.b.tensor(node.name + "/axes", axes.shape, "int32", axes)
        out_index = self._emit(node.output[0], (x.shape[0], 1, 1, x.shape[3]), self.q(node.output[0], node))
        self.b.op("MEAN", [x.index, axes_index], [out_index], "ReducerOptions", keepDims=True)

    def _ReduceMean(self, node):
        a = _attrs(node)
        x = self.value(node.input[0], node)
        axes = a.get("axes") or (list(self.constant(node.input[1], node)) if len(node.input) > 1 else None)
        if len(x.shape) != 4 or axes is None or sorted(int(v) % 4 for v in axes) != [2, 3]:
            self._fail(node, f"only a mean over the spatial axes (2, 3) of a feature map is supported, got {axes}")
        keep = bool(a.get("keepdims", 1))
        axes_nhwc = np.array([1, 2], np.int32)
        axes_index = self.b.tensor(node.name + "/axes", axes_nhwc.shape, "int32", axes_nhwc)
        shape = (x.shape[0], 1, 1, x.shape[3]) if keep else (x.shape[0], x.shape[3])
        out_index = self._emit(node.output[0], shape, self.q(node.output[0], node))
        self.b.op("MEAN", [x.index, axes_index], [out_index], "ReducerOptions", keepDims=keep)

    def _pool(self, node, kind: str):
        a = _attrs(node)
        x = self.value(node.input[0], node)
        kh, kw = a["kernel_shape"]
        sh, sw = a.get("strides", [1, 1])
        pads = list(a.get("pads", [0, 0, 0, 0]))
        same = [_same_pads(x.shape[1 + i], a["kernel_shape"][i], a.get("strides", [1, 1])[i], 1) for i in range(2)]
        if not any(pads):
            padding = self.b.s.Padding.VALID
        elif (pads[0], pads[2]) == same[0] and (pads[1], pads[3]) == same[1] and kind == "MAX_POOL_2D":
            padding = self.b.s.Padding.SAME
        else:
            self._fail(node, f"pool padding {pads} has no TFLite equivalent (SAME/VALID)")
        if a.get("ceil_mode", 0):
            self._fail(node, "ceil_mode pooling is not supported")
        out_shape = _nhwc(self.shapes[node.output[0]])
        out_index = self._emit(node.output[0], out_shape, x.q)  # TFLite int8 pools keep the input's scale
        self.b.op(kind, [x.index], [out_index], "Pool2DOptions", padding=padding, strideH=sh, strideW=sw,
                  filterHeight=kh, filterWidth=kw)

    def _MaxPool(self, node):
        self._pool(node, "MAX_POOL_2D")

    def _AveragePool(self, node):
        self._pool(node, "AVERAGE_POOL_2D")

    def _Flatten(self, node):
        x = self.value(node.input[0], node)
        if _attrs(node).get("axis", 1) != 1 or len(x.shape) not in (2, 4):
            self._fail(node, "only Flatten(axis=1) of a 2-D or 4-D tensor is supported")
        if len(x.shape) == 2:
            self.values[node.output[0]] = x
            return
        n, h, w, c = x.shape
        new_shape = np.array([n, h * w * c], np.int32)
        s_index = self.b.tensor(node.name + "/shape", new_shape.shape, "int32", new_shape)
        out_index = self._emit(node.output[0], tuple(new_shape), x.q, (c, h, w))
        self.b.op("RESHAPE", [x.index, s_index], [out_index], "ReshapeOptions", newShape=[int(v) for v in new_shape])

    def _Reshape(self, node):
        target = tuple(int(v) for v in self.constant(node.input[1], node))
        x = self.value(node.input[0], node)
        if len(target) != 2 or len(x.shape) != 4 or target[0] not in (x.shape[0], -1, 0):
            self._fail(node, f"only a reshape of a feature map to (batch, features) is supported, got {target}")
        self._Flatten(node)

    def _Concat(self, node):
        parts = [self.value(i, node) for i in node.input]
        axis = int(_attrs(node)["axis"]) % len(parts[0].shape)
        axis = _NCHW_TO_NHWC_AXIS[axis] if len(parts[0].shape) == 4 else axis
        out_shape = list(parts[0].shape)
        out_shape[axis] = sum(p.shape[axis] for p in parts)
        q_out = self.q(node.output[0], node)
        inputs = [p.index if p.q == q_out else self._requantize(p, q_out) for p in parts]
        out_index = self._emit(node.output[0], out_shape, q_out)
        self.b.op("CONCATENATION", inputs, [out_index], "ConcatenationOptions", axis=axis)

    def _requantize(self, x: _Value, q: QParams) -> int:
        """int8 → int8 at another scale (TFLite's int8 CONCATENATION needs one scale for all inputs)."""
        name = self.b.tensors[x.index].name + "/requantized"
        out = self.b.activation(name, x.shape, q)
        self.b.op("QUANTIZE", [x.index], [out])
        return out


def _shared_concat_ranges(graph, ranges: dict) -> dict:
    """Give a Concat's inputs and output one range (their union), as TFLite's own quantizer does."""
    for _ in range(3):  # concat of concats: a few passes settle chains
        for node in graph.node:
            if node.op_type != "Concat":
                continue
            names = [n for n in (*node.input, node.output[0]) if n in ranges]
            if names:
                lo = min(ranges[n][0] for n in names)
                hi = max(ranges[n][1] for n in names)
                for n in names:
                    ranges[n] = (lo, hi)
    return ranges


def onnx_to_int8_tflite(onnx_path: Path, ranges: dict[str, tuple[float, float]], out_path: Path) -> Path:
    """Write the int8 TFLite of a static-batch fp32 ONNX model, quantized with ``ranges`` (atomically)."""
    data = _Converter(onnx.load(str(onnx_path)), ranges, Path(onnx_path).name).convert()
    return write_bytes(Path(out_path), data)
