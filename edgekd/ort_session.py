"""ONNX Runtime sessions, set up in one place.

Every part of edgekd that runs an ONNX graph in ONNX Runtime (the ONNX Runtime and QNN backends,
calibration, sensitivity analysis, latency search and profiling) builds its session here, so the
options each one needs are named parameters, not copies of ``SessionOptions`` code.

A leaf module (it imports only ONNX Runtime, on first use), so that :mod:`edgekd.calibrate`, which
the backends build on, can use it without importing :mod:`edgekd.backends`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CPU = ("CPUExecutionProvider",)


def session_options(threads: int | None = None, *, sequential: bool = True, quiet: bool = False,
                    optimize: bool = True, optimized_model_path: str | Path | None = None,
                    profile_prefix: str | None = None):
    """An ``onnxruntime.SessionOptions``; with no arguments, ONNX Runtime's defaults.

    Args:
        threads: intra-op threads; None keeps ONNX Runtime's default (one per core).
        sequential: with ``threads``, also one inter-op thread and sequential execution, so that
            ``threads`` is the whole thread budget (what latency measurements need).
        quiet: log errors only (ONNX Runtime warns, e.g., on every dumped optimized model).
        optimize: False turns every graph optimization off, so that each tensor of the graph
            stays observable (calibration reads them).
        optimized_model_path: where ONNX Runtime writes the graph it really runs (after fusion).
        profile_prefix: turn on ONNX Runtime's JSON profiler, writing files with this prefix.
    """
    import onnxruntime as ort  # heavy SDK: imported on first use

    so = ort.SessionOptions()
    if threads is not None:
        so.intra_op_num_threads = threads
        if sequential:
            so.inter_op_num_threads = 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if optimized_model_path is not None:
        so.optimized_model_filepath = str(optimized_model_path)
    if quiet:
        so.log_severity_level = 3
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    return so


def ort_session(model: str | Path | bytes, threads: int | None = None, *,
                providers: Sequence[str] | None = CPU, options=None, **option_kwargs):
    """An ``onnxruntime.InferenceSession`` of a model file (or its bytes).

    Args:
        model: the ONNX file, or its serialized bytes.
        threads, **option_kwargs: passed to :func:`session_options`, unless ``options`` is given.
        providers: execution providers; None when ``options`` already names them (plugin EPs
            added with ``add_provider_for_devices``).
        options: a ready ``SessionOptions`` (then ``threads`` and ``option_kwargs`` must be unset).
    """
    import onnxruntime as ort  # heavy SDK: imported on first use

    if options is None:
        options = session_options(threads, **option_kwargs)
    elif threads is not None or option_kwargs:
        raise TypeError("ort_session: pass either options or session_options() arguments, not both")
    source = model if isinstance(model, bytes) else str(model)
    if providers is None:
        return ort.InferenceSession(source, options)
    return ort.InferenceSession(source, options, providers=list(providers))
