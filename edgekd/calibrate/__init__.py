"""Calibration: per-tensor activation ranges from min-max, percentile, entropy (KL) or MSE.

``calibrate(onnx_path, x, calibrator)`` observes every float tensor of the graph over the
calibration samples and returns :class:`Ranges`, which every PTQ path (ONNX Runtime, OpenVINO,
TensorRT, QNN) consumes, and which is written beside the artifact as a calibration cache.
"""

from __future__ import annotations

from edgekd.calibrate.cache import CACHE_FILENAME, Ranges, read_cache, write_cache
from edgekd.calibrate.collect import collect_stats
from edgekd.calibrate.methods import CALIBRATORS, MSE, Entropy, MinMax, Percentile, TensorStats, calibrator_for

__all__ = ["CACHE_FILENAME", "CALIBRATORS", "MSE", "Entropy", "MinMax", "Percentile", "Ranges", "TensorStats",
           "calibrate", "calibrator_for", "read_cache", "write_cache"]


def calibrate(onnx_path, x, calibrator=None, *, symmetric: bool = False, batch: int = 32,
              static: bool = False) -> Ranges:
    """Ranges for every float tensor of the ONNX graph at ``onnx_path``.

    Args:
        onnx_path: the (pre-processed) float model whose tensors are to be quantized.
        x: float32 NCHW calibration samples.
        calibrator: a :class:`MinMax`, :class:`Percentile`, :class:`Entropy` or :class:`MSE` (default MinMax).
        symmetric: ranges symmetric around zero (int8 symmetric activations, as TensorRT needs).
        batch: samples per ONNX Runtime call; with ``static`` the graph's fixed batch size.
    """
    # heavy SDK: imported on first use
    import onnx

    calibrator = calibrator or MinMax()
    stats = collect_stats(onnx_path, x, batch=batch, static=static, histograms=calibrator.needs_histogram)
    # Graph outputs (logits) keep their observed extremes: the top-1 is decided by the largest values,
    # which are the histogram's outliers; entropy calibration clipped EfficientNet-Lite1's logits so
    # that every class tied (0 % top-1 agreement with fp32, where min-max kept 73 %).
    outputs = {o.name for o in onnx.load(str(onnx_path)).graph.output}
    ranges = {name: tuple(float(v) for v in (MinMax() if name in outputs else calibrator).range(s, symmetric))
              for name, s in stats.items()}
    return Ranges(method=calibrator.name, symmetric=symmetric, samples=len(x), ranges=ranges,
                  params={k: v for k, v in vars(calibrator).items()})
