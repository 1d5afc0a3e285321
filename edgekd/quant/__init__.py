"""Quantization: numeric formats from the target, fake-quant + LSQ, BN folding, QAT, QDQ export."""

from edgekd.quant.fake_quant import FakeQuant
from edgekd.quant.formats import QuantSpec, activation_spec, format_from, weight_spec
from edgekd.quant.qat import QConv2d, QLinear, calibrate, fold_batchnorm, is_qat_model, prepare_qat, to_float

__all__ = ["FakeQuant", "QConv2d", "QLinear", "QuantSpec", "activation_spec", "calibrate", "export_qdq",
           "fold_batchnorm", "format_from", "is_qat_model", "prepare_qat", "to_float", "weight_spec"]


def __getattr__(name: str):
    if name == "export_qdq":  # onnx is imported only when exporting
        from edgekd.quant.export import export_qdq

        return export_qdq
    raise AttributeError(f"module 'edgekd.quant' has no attribute {name!r}")
