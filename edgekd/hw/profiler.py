"""Run a compiled model in its real runtime and time it, noise-aware, with the environment recorded.

ONNX Runtime is always available; OpenVINO (``.xml`` / ``.onnx``) and ExecuTorch (``.pte``) are used
when importable, otherwise :class:`~edgekd.errors.MissingExtraError` names the extra to install.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from edgekd.backends.base import Artifact
from edgekd.errors import ConfigError, require
from edgekd.hw.environment import cpu_model
from edgekd.ort_session import ort_session, session_options
from edgekd.runtime import load_file

log = logging.getLogger(__name__)

RUNTIMES = ("onnxruntime", "openvino", "executorch")  # backends that run a bare model file (Backend.load_file)
_SUFFIX_RUNTIME = {".onnx": "onnxruntime", ".xml": "openvino", ".pte": "executorch"}


@dataclass
class ProfileResult:
    """One model's latency: the trimmed median over all timed runs and how stable it was.

    ``spread`` is (max - min) / median of the per-round medians of the last ``min_rounds`` rounds;
    ``iqr_rel`` is the interquartile range of every timed run divided by the median.
    """

    median_ms: float
    p90_ms: float
    p10_ms: float  # on a contended machine the low tail is the least disturbed estimate
    spread: float
    iqr_rel: float
    runs: int
    rounds: list[float]
    stable: bool
    seconds: float
    env: dict = field(default_factory=dict)
    spread_net_of_drift: float | None = None  # interleaved with >= 2 others: spread once machine drift is divided out

    def to_json(self) -> dict:
        return asdict(self)


def trimmed_median(times: np.ndarray, trim: float = 0.1) -> float:
    """Median after dropping the slowest ``trim`` share: pre-emptions only ever add time."""
    times = np.sort(np.asarray(times, dtype=np.float64))
    keep = max(1, int(round(len(times) * (1.0 - trim))))
    return float(np.median(times[:keep]))


def time_fn(fn, *, warmup: int = 10, runs: int = 50, min_rounds: int = 3, max_rounds: int = 10,
            stable_spread: float = 0.05, time_limit_s: float = 10.0, trim: float = 0.1) -> ProfileResult:
    """Time ``fn()`` in rounds of ``runs`` calls until the round medians agree or time runs out.

    Stops once the last ``min_rounds`` round medians lie within ``stable_spread`` of each other
    (relative), or after ``max_rounds`` rounds, or when ``time_limit_s`` is spent (at least
    ``min_rounds`` rounds are always timed, so at least ``runs * min_rounds`` calls).
    """
    if runs < 1 or min_rounds < 1:
        raise ConfigError("time_fn: runs and min_rounds must be >= 1")
    started = time.perf_counter()
    for _ in range(warmup):
        fn()
    all_times: list[np.ndarray] = []
    medians: list[float] = []
    spread, stable = float("inf"), False
    while len(medians) < max(min_rounds, 1):
        medians.append(_one_round(fn, runs, all_times, trim))
    while True:
        last = np.asarray(medians[-min_rounds:])
        spread = float((last.max() - last.min()) / np.median(last))
        stable = spread <= stable_spread
        if stable or len(medians) >= max_rounds or time.perf_counter() - started > time_limit_s:
            break
        medians.append(_one_round(fn, runs, all_times, trim))
    times = np.concatenate(all_times)
    q1, q3 = np.percentile(times, [25, 75])
    med = trimmed_median(times, trim)
    return ProfileResult(median_ms=med, p90_ms=float(np.percentile(times, 90)),
                         p10_ms=float(np.percentile(times, 10)), spread=spread,
                         iqr_rel=float((q3 - q1) / np.median(times)), runs=len(times),
                         rounds=[round(m, 6) for m in medians], stable=stable,
                         seconds=time.perf_counter() - started)


def _one_round(fn, runs: int, sink: list, trim: float) -> float:
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - start
    times *= 1000.0
    sink.append(times)
    return trimmed_median(times, trim)


def runtime_of(path: Path, runtime: str | None) -> str:
    """The runtime named, or the one a model file's suffix implies."""
    if runtime is None:
        runtime = _SUFFIX_RUNTIME.get(Path(path).suffix)
        if runtime is None:
            raise ConfigError(f"{path}: cannot tell the runtime from the suffix; pass runtime= "
                              f"one of {sorted(RUNTIMES)}")
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; valid: {', '.join(sorted(RUNTIMES))}")
    return runtime


def runtime_version(runtime: str) -> str | None:
    try:
        return metadata.version(runtime)
    except metadata.PackageNotFoundError:
        return None


def load_runner(path: Path, runtime: str, threads: int):
    """A callable ``run(x)`` executing the model file in ``runtime`` with ``threads`` threads (the
    runtime's backend runs it: :func:`edgekd.runtime.load_file`)."""
    return load_file(path, runtime, threads)


def ort_options(threads: int, profile_prefix: str | None = None):
    """The session options every latency measurement in ONNX Runtime uses: ``threads`` intra-op threads,
    one inter-op thread, sequential, quiet; with ``profile_prefix``, ONNX Runtime's JSON profiler on."""
    return session_options(threads, quiet=True, profile_prefix=profile_prefix)


def onnx_precision(path: Path) -> str:
    """``int8`` when the ONNX graph holds quantize nodes, else ``fp32``."""
    # heavy SDK: imported on first use
    import onnx

    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    return "int8" if ops & {"QuantizeLinear", "QLinearConv", "DequantizeLinear"} else "fp32"


def profile(model, input_shape=None, *, runtime: str | None = None, batch: int = 1, threads: int = 1,
            precision: str | None = None, seed: int = 0, **timing) -> ProfileResult:
    """Time a compiled model in its real runtime (warm-up, >= 50 timed runs, trimmed median).

    Args:
        model: a model file (``.onnx``, OpenVINO ``.xml``, ExecuTorch ``.pte``) or an edgekd
            :class:`~edgekd.backends.base.Artifact`.
        input_shape: (C, H, W) without the batch; taken from the artifact when one is given.
        runtime: ``onnxruntime``, ``openvino`` or ``executorch``; default from the file suffix.
        batch, threads: the fixed batch size and runtime thread count (both recorded).
        precision: recorded as given; for ONNX files read from the graph when omitted.
        **timing: passed to :func:`time_fn` (``runs``, ``min_rounds``, ``time_limit_s``, ...).

    Returns:
        A :class:`ProfileResult` whose ``env`` records CPU model, runtime and version, threads,
        batch, precision and input shape.

    Raises:
        MissingExtraError: the runtime is not installed (names the extra).
    """
    path, input_shape, precision = _unpack(model, input_shape, precision)
    runtime = runtime_of(path, runtime)
    if runtime == "onnxruntime" and precision is None:
        precision = onnx_precision(path)
    run = load_runner(path, runtime, threads)
    x = np.random.default_rng(seed).standard_normal((batch, *input_shape)).astype(np.float32)
    timing.setdefault("runs", 50)
    if timing["runs"] < 50:
        log.warning("profile: %d timed runs per round (fewer than 50)", timing["runs"])
    result = time_fn(lambda: run(x), **timing)
    result.env = {"cpu": cpu_model(), "cpus": os.cpu_count(), "runtime": runtime,
                  "runtime_version": runtime_version(runtime), "threads": threads, "batch": batch,
                  "precision": precision, "input_shape": list(input_shape), "model": Path(path).name}
    if runtime == "executorch":  # its Python runtime sizes XNNPACK's thread pool itself
        result.env["threads_note"] = "requested only: the ExecuTorch runtime picks its own thread pool size"
    return result


def _unpack(model, input_shape, precision):
    if isinstance(model, Artifact):
        return Path(model.path), tuple(input_shape or model.input_shape), precision or model.precision
    if input_shape is None:
        raise ConfigError("profile: input_shape (C, H, W) is required for a bare model file")
    return Path(model), tuple(input_shape), precision


def profile_nodes(path: Path, input_shape, *, batch: int = 1, threads: int = 1, runs: int = 30,
                  warmup: int = 5, trim: float = 0.2, seed: int = 0, runtime: str = "onnxruntime") -> dict[str, dict]:
    """Per-kernel times (ms) of a model as its runtime really runs it (after fusion).

    Uses the runtime's own profiler (ONNX Runtime's JSON trace, OpenVINO's performance counters);
    each node's time is the mean after dropping the slowest ``trim`` share (the timers have 1 µs
    resolution, so a mean resolves sub-µs kernels better).
    Returns ``{node name: {"op": runtime op type, "ms": time}}`` in execution order.
    """
    x = np.random.default_rng(seed).standard_normal((batch, *input_shape)).astype(np.float32)
    if runtime == "openvino":
        return _openvino_nodes(path, x, threads, warmup, runs, trim)
    if runtime != "onnxruntime":
        raise ConfigError(f"profile_nodes: no per-kernel profiler wired for {runtime!r}")
    with tempfile.TemporaryDirectory() as tmp:
        sess = ort_session(path, options=ort_options(threads, str(Path(tmp) / "prof")))
        name = sess.get_inputs()[0].name
        for _ in range(warmup + runs):  # warm-up events are dropped below: only the last runs count
            sess.run(None, {name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    return _node_times(events, runs, trim)


def _openvino_nodes(path: Path, x: np.ndarray, threads: int, warmup: int, runs: int, trim: float) -> dict:
    ov = require("openvino", "openvino")
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                        "PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": True})
    request = compiled.create_infer_request()
    for _ in range(warmup):
        request.infer({0: x})
    events = []
    for _ in range(runs):  # the counters describe the last inference only
        request.infer({0: x})
        events += [{"cat": "Node", "name": f"{pi.node_name}_kernel_time", "dur": pi.real_time.total_seconds() * 1e6,
                    "args": {"op_name": pi.node_type}} for pi in request.get_profiling_info()
                   if pi.status.name != "NOT_RUN"]
    return _node_times(events, runs, trim)


def _node_times(events: list, runs: int, trim: float) -> dict[str, dict]:
    durations: dict[str, list] = {}
    ops: dict[str, str] = {}
    for ev in events:
        if ev.get("cat") != "Node" or not ev.get("name", "").endswith("_kernel_time"):
            continue
        node = ev["name"][: -len("_kernel_time")]
        durations.setdefault(node, []).append(ev["dur"] / 1000.0)
        ops[node] = ev.get("args", {}).get("op_name", "?")
    out = {}
    for node, durs in durations.items():
        d = np.sort(np.asarray(durs[-runs:]))
        keep = max(1, int(round(len(d) * (1.0 - trim))))
        out[node] = {"op": ops[node], "ms": float(d[:keep].mean())}
    return out
