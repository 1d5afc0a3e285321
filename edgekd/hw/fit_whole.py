"""Latency profiles for a runtime without a per-kernel profiler wired in: ExecuTorch's XNNPACK delegate.

The pip ExecuTorch runtime times a whole ``.pte``; the delegate's per-operator events need a runtime
built with its event tracer. So each sampled network is compiled as the target compiles it
(``torch.export`` → PT2E int8 → XNNPACK), timed whole and interleaved like every profile, and its
time is shared among its blocks by a prior: this machine's ONNX Runtime profile of the same precision
(fitted per runtime kernel), re-weighted per block kind by a non-negative fit of the ExecuTorch totals,
``total ≈ base + Σ_kind w_kind · Σ prior ms of that kind's blocks``. The shared block times then fill
the lookup table, trees and overhead that every profile has (:func:`edgekd.hw.fit.fit_table`), so the
one prediction path (:class:`edgekd.hw.model.ProfileLatencyModel`) serves it.
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
from edgekd.hw.features import KINDS, blocks_of
from edgekd.hw.interleave import profile_many
from edgekd.hw.model import ProfileLatencyModel, profile_path
from edgekd.hw.sampling import sample_archs
from edgekd.models import create_student

log = logging.getLogger(__name__)

PRIOR_TARGET = "x86-cpu-onnxruntime"  # its per-kernel profile shares a network's time among blocks


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
                  cpu: int | None = None) -> list[dict]:
    """Time ``(arch, input_shape, precision)`` networks whole, interleaved; records without ``blocks``."""
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for i, (arch, shape, precision) in enumerate(jobs):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            files[str(i)] = (compile_pte(arch, shape, precision, folder), shape)
        totals = profile_many(files, runtime="executorch", threads=threads, rounds=rounds, runs=runs, cpu=cpu)
    stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return [{"arch": arch, "input_shape": list(shape), "precision": precision, "total_ms": totals[str(i)].median_ms,
             "measured_at": stamp, "spread": totals[str(i)].spread, "runs": totals[str(i)].runs,
             "interleaved_with": len(jobs) - 1} for i, (arch, shape, precision) in enumerate(jobs)]


def attribute_by_prior(records: list[dict], prior_target: str = PRIOR_TARGET) -> tuple[list[dict], dict]:
    """Each record's total shared among its blocks: the prior's block times, re-weighted per kind.

    Returns the records with ``blocks`` filled in and the fitted weights per precision.
    """
    from scipy.optimize import nnls  # heavy optional package: imported on first use

    path = profile_path(prior_target)
    if not path.exists():
        raise ConfigError(f"a whole-network latency fit shares time among blocks by {prior_target}'s profile; fit "
                          f"that first: `edgekd profile --target {prior_target} --fit`")
    out, weights = [], {}
    for precision in sorted({r["precision"] for r in records}):
        prior = ProfileLatencyModel.load(path, precision)
        recs = [r for r in records if r["precision"] == precision]
        shares = [[(b, ms) for b, ms, _ in prior.block_ms(blocks_of(r["arch"], r["input_shape"], 10, precision))]
                  for r in recs]
        per_kind = np.array([[sum(ms for b, ms in net if b.kind == k) for k in KINDS] + [1.0] for net in shares])
        y = np.array([r["total_ms"] for r in recs])
        coef, _ = nnls(per_kind / y[:, None], np.ones(len(y)))  # relative error: small networks count too
        overall = float(y.sum() / max(per_kind[:, :-1].sum(), 1e-12))
        w = {k: max(float(c), 0.1 * overall) for k, c in zip(KINDS, coef)}  # no kind takes no time at all
        weights[precision] = {"per_kind": w, "base_ms": float(coef[-1]), "networks": len(recs)}
        for r, net in zip(recs, shares):
            scaled = {b.path: w[b.kind] * ms for b, ms in net}
            level = max(r["total_ms"] - coef[-1], 0.5 * r["total_ms"]) / max(sum(scaled.values()), 1e-12)
            out.append({**r, "blocks": {p: {"ms": ms * level} for p, ms in scaled.items()}})
    return out, weights


def fit_whole_profile(target, *, precisions, networks_per_space: int, input_shapes, time_limit_s: float,
                      seed: int = 0, out: Path | None = None, progress: bool = False, raw_out: Path | None = None,
                      rounds: int = 5, runs: int = 20, cpu: int | None = None, group: int = 4) -> Path:
    """:func:`edgekd.hw.fit.fit_profile` for :data:`WHOLE_NETWORK` runtimes (same arguments)."""
    from edgekd.hw.fit import write_profile

    started = time.perf_counter()
    archs = sample_archs(networks_per_space, seed)
    jobs = [(arch, tuple(input_shapes[i % len(input_shapes)])) for i, arch in enumerate(archs)]
    records = []
    for start in range(0, len(jobs), group):
        if time.perf_counter() - started > time_limit_s:
            log.info("latency fit: time limit reached after %d of %d networks", start, len(jobs))
            break
        batch = [(arch, shape, p) for arch, shape in jobs[start:start + group] for p in precisions]
        records += measure_whole(batch, threads=target.latency.threads, rounds=rounds, runs=runs, cpu=cpu)
        if progress:
            log.info("latency fit: %d/%d networks", min(start + group, len(jobs)), len(jobs))
    if raw_out is not None:
        write_profile(Path(raw_out), {"target": target.name, "records": records})
    return fit_whole_records(target, records, precisions, out=out, seconds=time.perf_counter() - started, seed=seed)


def fit_whole_records(target, records: list[dict], precisions, *, out: Path | None = None, seconds: float = 0.0,
                      seed: int = 0, provenance: dict | None = None) -> Path:
    """Attribute whole-network records to blocks by the prior and fit the profile from them."""
    from edgekd.hw.fit import fit_records

    attributed, weights = attribute_by_prior(records)
    note = (f"whole-network times (no per-kernel profiler for this runtime here), shared among blocks by "
            f"{PRIOR_TARGET}'s profile re-weighted per block kind")
    return fit_records(target, attributed, precisions, out=out, seconds=seconds, seed=seed,
                       provenance={"attribution": {"method": note, "prior": PRIOR_TARGET, "weights": weights},
                                   **(provenance or {})})
