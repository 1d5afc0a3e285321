"""Latency profiles for a runtime without a per-kernel profiler wired in: ExecuTorch's XNNPACK delegate.

The pip ExecuTorch runtime times a whole ``.pte``; the delegate's per-operator events need a runtime
built with its event tracer. So each sampled network is compiled as the target compiles it
(``torch.export`` → PT2E int8 → XNNPACK), timed whole and interleaved like every profile, and a
linear cost model is fitted to those totals: per block, milliseconds per million dense MACs of its
kind, per million depthwise MACs of its kernel size (XNNPACK's 7×7 depthwise costs about ten times its
5×5 per MAC here), per million activation elements moved, and per block call.

A first version shared each total among blocks by the ONNX Runtime profile re-weighted per block
kind and fitted lookup table + trees on that: 29 % of 100 held-out networks within ±10 % (the
MobileNetV2 family 8 %: ONNX Runtime's relative block costs do not transfer to XNNPACK). The linear
model: 82 %, and as the prior of lookup table + trees 75 % (the table memorized its fitting set).
"""

from __future__ import annotations

import datetime as _dt
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from edgekd.errors import ConfigError
from edgekd.hw.compiled import cached_compile
from edgekd.hw.features import LINEAR_FEATURES, blocks_of
from edgekd.hw.fit import UNSTABLE, fit_records, write_profile
from edgekd.hw.interleave import profile_many
from edgekd.hw.sampling import sample_archs
from edgekd.models import create_student

log = logging.getLogger(__name__)


def compile_pte(arch: dict, input_shape, precision: str, folder: Path, *, seed: int = 0) -> Path:
    """``arch`` (random weights: latency does not depend on them) lowered to XNNPACK like the target."""
    from edgekd.backends.executorch import lower, quantize_pt2e  # heavy SDK: imported on first use
    from edgekd.calibrate import MinMax

    torch.manual_seed(seed)
    kwargs = dict(arch)
    model = create_student(kwargs.pop("name"), tuple(input_shape), 10, **kwargs).eval()
    example = (torch.zeros(1, *input_shape),)
    if precision == "int8":
        calib = np.random.default_rng(seed).standard_normal((8, *input_shape)).astype(np.float32)
        model = quantize_pt2e(model, example, calib, True, 1, MinMax())
    elif precision != "fp32":
        raise ConfigError(f"latency profile: precision {precision!r} is not supported; use int8 or fp32")
    path = Path(folder) / f"{precision}.pte"
    lower(model, example, path)
    return path


def measure_whole(jobs: list[tuple[dict, tuple, str]], *, threads: int = 1, rounds: int = 5, runs: int = 20,
                  cpu: int | None = None, cache: Path | None = None, shuffle: bool = False) -> list[dict]:
    """Time ``(arch, input_shape, precision)`` networks whole, interleaved; records without ``blocks``.

    ``spread`` is each network's own repeatability: with three networks or more, its round medians'
    spread once the machine's drift (what every network did alike) is divided out; ``machine_spread``
    keeps the raw spread. ``cache``: compiled files kept there (:mod:`edgekd.hw.compiled`)."""
    with tempfile.TemporaryDirectory() as tmp:
        files = {str(i): (cached_compile("pte", arch, shape, precision, cache, Path(tmp)), shape)
                 for i, (arch, shape, precision) in enumerate(jobs)}
        totals = profile_many(files, runtime="executorch", threads=threads, rounds=rounds, runs=runs, cpu=cpu,
                              shuffle=shuffle)
    return [whole_record(job, totals[str(i)], len(jobs)) for i, job in enumerate(jobs)]


def whole_record(job: tuple[dict, tuple, str], total, pool_size: int) -> dict:
    """The fit's record of one network timed whole in an interleaved pool of ``pool_size``."""
    arch, shape, precision = job
    own = total.spread if total.spread_net_of_drift is None else total.spread_net_of_drift
    return {"arch": arch, "input_shape": list(shape), "precision": precision, "total_ms": total.median_ms,
            "measured_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "spread": own,
            "machine_spread": total.spread, "runs": total.runs, "interleaved_with": pool_size - 1}


def fit_linear_table(records: list[dict], precision: str, *, seed: int = 0) -> dict:
    """One precision's linear cost model: per-feature milliseconds by relative non-negative least squares.

    A network's time is the sum over its blocks of ``coef · block.linear_vector()``; no feature costs
    negative time, and small networks count as much as big ones (errors are relative). Deterministic:
    ``seed`` is accepted as :func:`edgekd.hw.fit.fit_table` takes it.
    """
    from scipy.optimize import nnls  # heavy optional package: imported on first use

    recs = [r for r in records if r["precision"] == precision]
    if len(recs) < 3:
        raise ConfigError(f"latency fit ({precision}): {len(recs)} networks timed; at least 3 are needed")
    stable = [r for r in recs if float(r.get("spread", 0.0)) <= UNSTABLE] or recs  # disturbed timings left out
    a = np.array([_network_vector(r) for r in stable])
    y = np.array([r["total_ms"] for r in stable])
    coef, _ = nnls(a / y[:, None], np.ones(len(y)))
    predicted = np.array([_network_vector(r) for r in recs]) @ coef
    rel = predicted / np.array([r["total_ms"] for r in recs]) - 1
    return {"linear": {"features": list(LINEAR_FEATURES), "coef": [float(c) for c in coef]},
            "overhead": {"scale": 1.0, "base_ms": 0.0, "per_kernel_ms": 0.0},
            "fit": {"in_sample_rmspe": float(np.sqrt(np.mean(rel ** 2))),
                    "in_sample_within_10pct": float(np.mean(np.abs(rel) <= 0.10)), "networks": len(recs),
                    "networks_in_fit": len(stable)}}


def _network_vector(record: dict) -> np.ndarray:
    return np.sum([b.linear_vector() for b in blocks_of(record["arch"], record["input_shape"], 10,
                                                         record["precision"])], axis=0)


def fit_whole_profile(target, *, precisions, networks_per_space: int, input_shapes, time_limit_s: float,
                      seed: int = 0, out: Path | None = None, progress: bool = False, raw_out: Path | None = None,
                      rounds: int = 5, runs: int = 20, cpu: int | None = None, group: int | None = 4,
                      cache: Path | None = None) -> Path:
    """:func:`edgekd.hw.fit.fit_profile` for its ``WHOLE_NETWORK`` runtimes (same arguments).

    ``group=None`` times every network in one pool (A B C ... reshuffled each round), so that the
    machine's drift over the fit hits all alike instead of making groups timed minutes apart disagree;
    the networks are compiled first (within ``time_limit_s``), into ``cache`` when given.
    """
    started = time.perf_counter()
    archs = sample_archs(networks_per_space, seed)
    jobs = [(arch, tuple(input_shapes[i % len(input_shapes)])) for i, arch in enumerate(archs)]
    if group is None:
        records = _measure_pool(target, jobs, precisions, started + time_limit_s, progress, cache,
                                {"rounds": rounds, "runs": runs, "cpu": cpu})
    else:
        records = []
        for start in range(0, len(jobs), group):
            if time.perf_counter() - started > time_limit_s:
                log.info("latency fit: time limit reached after %d of %d networks", start, len(jobs))
                break
            batch = [(arch, shape, p) for arch, shape in jobs[start:start + group] for p in precisions]
            records += measure_whole(batch, threads=target.latency.threads, rounds=rounds, runs=runs, cpu=cpu,
                                     cache=cache)
            if progress:
                log.info("latency fit: %d/%d networks", min(start + group, len(jobs)), len(jobs))
    if raw_out is not None:
        write_profile(Path(raw_out), {"target": target.name, "records": records})
    return fit_whole_records(target, records, precisions, out=out, seconds=time.perf_counter() - started, seed=seed)


def _measure_pool(target, jobs, precisions, deadline: float, progress: bool, cache: Path | None,
                  timing: dict) -> list[dict]:
    """Compile every network (until ``deadline``) into ``cache``, then time them all in one shuffled pool."""
    batch = [(arch, shape, p) for arch, shape in jobs for p in precisions]
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(cache) if cache is not None else Path(tmp)
        for n, (arch, shape, precision) in enumerate(batch):
            if time.perf_counter() > deadline:
                log.info("latency fit: time limit reached after compiling %d of %d networks", n, len(batch))
                batch = batch[:n]
                break
            cached_compile("pte", arch, shape, precision, cache)
            if progress:
                log.info("latency fit: compiled %d/%d networks", n + 1, len(batch))
        if progress:
            log.info("latency fit: timing %d networks interleaved in one pool", len(batch))
        return measure_whole(batch, threads=target.latency.threads, cache=cache, shuffle=True, **timing)


def fit_whole_records(target, records: list[dict], precisions, *, out: Path | None = None, seconds: float = 0.0,
                      seed: int = 0, provenance: dict | None = None) -> Path:
    """Fit every precision's linear cost model from whole-network records and write the profile."""
    method = "linear cost model fitted to whole-network times (no per-kernel profiler for this runtime here)"
    return fit_records(target, records, precisions, out=out, seconds=seconds, seed=seed,
                       provenance={"model": method, **(provenance or {})}, table=fit_linear_table)
