"""Observe every float activation of an ONNX graph over the calibration set (in ONNX Runtime)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx

from edgekd.calibrate.methods import BINS, TensorStats
from edgekd.ort_session import ort_session


def float_tensors(model: onnx.ModelProto) -> list[str]:
    """Names of the graph input and every float node output (the tensors a QDQ pass may quantize)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]}
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    for node in model.graph.node:
        if node.op_type in ("Constant", "Shape"):
            continue
        names += [o for o in node.output if o and types.get(o) == onnx.TensorProto.FLOAT]
    return list(dict.fromkeys(names))


def _session(model_path: Path, names: list[str]):
    model = onnx.load(str(model_path))
    present = {o.name for o in model.graph.output}
    for name in names:
        if name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "augmented.onnx"
        onnx.save(model, str(path))
        sess = ort_session(path, optimize=False, quiet=True)  # no optimization: every tensor stays observable
    return sess, [o.name for o in sess.get_outputs()]


def _batches(x: np.ndarray, batch: int):
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        if len(chunk) < batch and batch > 1:  # static-batch graph: pad with copies, counted once
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])
            yield chunk, len(x) - i
        else:
            yield chunk, len(chunk)


def collect_stats(model_path: Path, x: np.ndarray, *, batch: int = 32, static: bool = False,
                  histograms: bool = True) -> dict[str, TensorStats]:
    """Min/max of every float tensor, then (if asked) its signed and |x| histograms."""
    model = onnx.load(str(model_path))
    names = float_tensors(model)
    sess, outputs = _session(model_path, names)
    input_name = sess.get_inputs()[0].name
    x = np.ascontiguousarray(x, dtype=np.float32)
    feed_batch = batch if static else min(batch, len(x))
    stats: dict[str, TensorStats] = {}
    for chunk, n in _batches(x, feed_batch):
        for name, value in zip(outputs, sess.run(None, {input_name: chunk})):
            if name not in names:
                continue
            v = np.asarray(value)[:n] if value.ndim and value.shape[0] == len(chunk) else np.asarray(value)
            lo, hi = float(v.min()), float(v.max())
            s = stats.get(name)
            stats[name] = TensorStats(lo, hi) if s is None else TensorStats(min(s.lo, lo), max(s.hi, hi))
    if histograms:
        for s in stats.values():
            s.hist, s.abs_hist = np.zeros(BINS, np.int64), np.zeros(BINS, np.int64)
        for chunk, n in _batches(x, feed_batch):
            for name, value in zip(outputs, sess.run(None, {input_name: chunk})):
                if name in stats:
                    v = np.asarray(value)[:n] if value.ndim and value.shape[0] == len(chunk) else np.asarray(value)
                    accumulate(stats[name], v.ravel())
    return stats


def accumulate(s: TensorStats, v: np.ndarray) -> None:
    """Add ``v`` to the histograms of ``s`` (signed and absolute)."""
    if s.hi > s.lo:
        s.hist += np.histogram(v, bins=BINS, range=(s.lo, s.hi))[0]
    else:
        s.hist[0] += v.size
    amax = s.amax
    if amax > 0:
        s.abs_hist += np.histogram(np.abs(v), bins=BINS, range=(0.0, amax))[0]
    else:
        s.abs_hist[0] += v.size
