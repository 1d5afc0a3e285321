"""Numeric formats: what a target's ``[format]`` table means for the quantizers QAT inserts.

- int8 weights / uint8 activations, asymmetric (ONNX Runtime, OpenVINO): weights int8 per-channel
  symmetric [-127, 127]; activations uint8 per tensor with a zero point.
- int8 / int8 symmetric (TensorRT, QNN): same weights; activations int8 [-128, 127], zero point 0.
- int4 / int8 (W4A8): weights int4 per-channel symmetric [-7, 7]; activations as declared.
- int2 / int8 (W2A8): ternary weights per channel [-1, 1], stored in int8 (ONNX has no int2 type ONNX
  Runtime runs); activations as declared.
- int4 / uint4 (W4A4, the harder format): int4 weights as above; activations uint4 [0, 15] per tensor
  with a zero point (``int4`` activations: [-8, 7]). Exported as ONNX INT4/UINT4 QDQ (opset 21).
- fp16: weights and activations rounded to fp16.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekd.errors import ConfigError
from edgekd.targets import NumericFormat


@dataclass(frozen=True)
class QuantSpec:
    """One quantizer: an integer grid ``[qmin, qmax]`` (or ``fp16``) and how it is shared.

    ``per_channel`` puts one scale per output channel (axis 0); ``symmetric`` fixes the zero
    point at 0. ``bits`` is what the format promises (a 4-bit grid may be stored in int8).
    """

    kind: str  # "int" | "fp16" | "fp32"
    bits: int = 8
    qmin: int = 0
    qmax: int = 0
    symmetric: bool = True
    per_channel: bool = False

    @property
    def enabled(self) -> bool:
        return self.kind != "fp32"


FP32 = QuantSpec("fp32", 32)
FP16 = QuantSpec("fp16", 16)


def weight_spec(fmt: NumericFormat) -> QuantSpec:
    """Weights: symmetric narrow-range integers (so -q == q), per channel unless the target says not."""
    if fmt.weights in ("fp32", "fp16"):
        return FP32 if fmt.weights == "fp32" else FP16
    bits = {"int8": 8, "int4": 4, "int2": 2}[fmt.weights]
    if not fmt.weight_symmetric:
        raise ConfigError(f"format {fmt.key}: asymmetric weights are not supported by edgekd QAT; "
                          "set weight_symmetric = true")
    q = 2 ** (bits - 1) - 1
    return QuantSpec("int", bits, -q, q, True, fmt.weight_granularity == "per_channel")


def activation_spec(fmt: NumericFormat) -> QuantSpec:
    """Activations: per tensor; uint8 with a zero point, or int8 symmetric, as the target declares."""
    if fmt.activations in ("fp32", "fp16"):
        return FP32 if fmt.activations == "fp32" else FP16
    bits = {"uint8": 8, "int8": 8, "uint4": 4, "int4": 4}[fmt.activations]
    if fmt.activations.startswith("uint"):
        if fmt.activation_symmetric:
            raise ConfigError(f"format {fmt.key}: {fmt.activations} activations cannot be symmetric; "
                              f"use {fmt.activations[1:]}")
        return QuantSpec("int", bits, 0, 2**bits - 1, False, False)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return QuantSpec("int", bits, lo, hi, bool(fmt.activation_symmetric), False)


def format_from(weights: str = "int8", activations: str = "uint8", symmetric_activations: bool = False,
                per_channel: bool = True) -> NumericFormat:
    """A NumericFormat without a target file (e.g. W4A8 for a benchmark)."""
    return NumericFormat(weights=weights, activations=activations, activation_symmetric=symmetric_activations,
                         weight_granularity="per_channel" if per_channel else "per_tensor")
