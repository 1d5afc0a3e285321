"""Quantization: numeric formats from the target, fake-quant + LSQ, BN folding, QAT, QDQ export and PTQ."""

import importlib

from edgekd.quant.fake_quant import FakeQuant
from edgekd.quant.formats import QuantSpec, activation_spec, format_from, weight_spec
from edgekd.quant.qat import QConv2d, QLinear, calibrate, fold_batchnorm, is_qat_model, prepare_qat, to_float

__all__ = ["FakeQuant", "QConv2d", "QDQConfig", "QLinear", "QuantSpec", "activation_spec", "calibrate", "export_qdq",
           "fold_batchnorm", "format_from", "is_qat_model", "prepare_qat", "qdq_summary", "quantize_onnx", "to_float",
           "weight_spec"]

# onnx (and ONNX Runtime's quantizer) are imported only when exporting or quantizing an ONNX graph
_ONNX_LAZY = {"export_qdq": "edgekd.quant.export", "QDQConfig": "edgekd.quant.qdq",
              "quantize_onnx": "edgekd.quant.qdq", "qdq_summary": "edgekd.quant.qdq"}


def __getattr__(name: str):
    if name in _ONNX_LAZY:

        return getattr(importlib.import_module(_ONNX_LAZY[name]), name)
    raise AttributeError(f"module 'edgekd.quant' has no attribute {name!r}")
