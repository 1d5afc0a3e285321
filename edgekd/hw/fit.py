"""Fit a target's latency profile from measurements of sampled networks in its real runtime.

Each sampled network is compiled as the target compiles it (ONNX export, int8 QDQ for int8),
timed whole interleaved with the others of its group (:mod:`edgekd.hw.interleave`), and once more with ONNX Runtime's node
profiler so that every runtime kernel (after fusion) is attributed to its block. Block times
fill the lookup table and train the boosted trees; whole-network times fit the overhead.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from edgekd._io import write_text
from edgekd.errors import ConfigError
from edgekd.hw import trees
from edgekd.hw.environment import environment
from edgekd.hw.features import FEATURES, arch_key, attribute, blocks_of, exported_ops
from edgekd.hw.interleave import profile_many
from edgekd.hw.model import PROFILE_SCHEMA, profile_path, target_precision
from edgekd.hw.profiler import profile_nodes, runtime_version
from edgekd.hw.sampling import sample_archs
from edgekd.models import create_student
from edgekd.onnx_export import export_onnx
from edgekd.quant.qdq import QDQConfig, quantize_onnx
from edgekd.targets import load_target

log = logging.getLogger(__name__)

_NOT_KERNELS = {"Constant", "Identity"}
FITTABLE = ("onnxruntime", "openvino")  # runtimes with a per-kernel profiler wired in
WHOLE_NETWORK = ("executorch",)  # timed whole, a linear cost model fitted (edgekd.hw.fit_whole)
UNSTABLE = 0.25  # a timing whose round medians differ by more than this was disturbed by other load


def compile_onnx(arch: dict, input_shape, precision: str, folder: Path, *, symmetric_activations: bool = False,
                 seed: int = 0) -> tuple[Path, Path]:
    """Build ``arch`` (random weights: latency does not depend on them) and compile it like the target.

    Returns ``(fp32 file, file the runtime runs)``; both are the same file for fp32.
    """
    torch.manual_seed(seed)
    kwargs = dict(arch)
    model = create_student(kwargs.pop("name"), tuple(input_shape), 10, **kwargs).eval()
    fp32 = export_onnx(model, tuple(input_shape), Path(folder) / "fp32.onnx")
    if precision == "fp32":
        return fp32, fp32
    if precision != "int8":
        raise ConfigError(f"latency profile: precision {precision!r} is not supported; use int8 or fp32")
    calib = np.random.default_rng(seed).standard_normal((16, *input_shape)).astype(np.float32)
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # ONNX Runtime's quantizer logs every bias copy on the root logger
    try:
        config = QDQConfig(activations="int8" if symmetric_activations else "uint8",
                           activation_symmetric=symmetric_activations, method="minmax", percentile=99.99)
        return fp32, quantize_onnx(fp32, Path(folder) / "int8.onnx", calib, config)
    finally:
        root.setLevel(level)


def measure_network(arch: dict, input_shape, precision: str, *, threads: int = 1, symmetric_activations=False,
                    node_runs: int = 30, runtime: str = "onnxruntime", rounds: int = 5, runs: int = 20) -> dict:
    """Time one network whole and per block in ``runtime``; the record :func:`fit_table` consumes.

    OpenVINO runs the same ONNX files (fp32, or the int8 QDQ graph, which its CPU plugin executes in int8).
    """
    return measure_networks([(arch, tuple(input_shape), precision)], threads=threads, node_runs=node_runs,
                            symmetric_activations=symmetric_activations, runtime=runtime, rounds=rounds,
                            runs=runs)[0]


def measure_networks(jobs: list[tuple[dict, tuple, str]], *, threads: int = 1, symmetric_activations=False,
                     node_runs: int = 30, runtime: str = "onnxruntime", rounds: int = 5, runs: int = 20,
                     cpu: int | None = None) -> list[dict]:
    """Time several ``(arch, input_shape, precision)`` networks interleaved (A B C A B C ...), then per block.

    Interleaving spreads machine drift over all of them; each record's ``spread`` is that network's
    repeatability over ``rounds`` interleaved rounds.
    """
    with tempfile.TemporaryDirectory() as tmp:
        built = []
        for i, (arch, shape, precision) in enumerate(jobs):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            built.append(compile_onnx(arch, shape, precision, folder, symmetric_activations=symmetric_activations))
        totals = profile_many({str(i): (path, jobs[i][1]) for i, (_, path) in enumerate(built)}, runtime=runtime,
                              threads=threads, rounds=rounds, runs=runs, cpu=cpu)
        records = []
        for i, ((arch, shape, precision), (fp32, path)) in enumerate(zip(jobs, built)):
            blocks = blocks_of(arch, shape, 10, precision)
            nodes = profile_nodes(path, shape, threads=threads, runs=node_runs, runtime=runtime)
            unfused = exported_ops(fp32, blocks)
            total = totals[str(i)]
            records.append({
                "arch": arch, "input_shape": list(shape), "precision": precision, "total_ms": total.median_ms,
                "measured_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "spread": total.spread, "runs": total.runs, "interleaved_with": len(jobs) - 1,
                "blocks": {p: {**v, "exported": [op for op in unfused[p] if op not in _NOT_KERNELS]}
                           for p, v in attribute(nodes, blocks).items()}})
    return records


def fit_table(measurements: list[dict], precision: str, *, seed: int = 0) -> dict:
    """Fit one precision's lookup table, regressor, kernel counts and overhead from measurement records.

    A record holds ``arch``, ``input_shape``, ``total_ms`` and ``blocks`` (``{block path: {"ms": ...}}``,
    optionally ``"ops"`` and ``"exported"``), as :func:`measure_network` returns.
    """
    recs = [m for m in measurements if m["precision"] == precision]
    if len(recs) < 3:
        raise ConfigError(f"latency fit ({precision}): {len(recs)} networks measured; at least 3 are needed")
    nets = [(m, blocks_of(m["arch"], m["input_shape"], 10, precision)) for m in recs]
    kernels, fusion = _kernel_table(nets)
    corrected = _corrected_blocks(nets, kernels)
    samples, x, y = defaultdict(list), [], []
    for (m, blocks), times in zip(nets, corrected):
        for b in blocks:
            ms = max(times[b.path], 1e-5)
            samples[b.key].append(ms)
            x.append(b.vector())
            y.append(np.log(ms))
    lut = {k: float(np.median(v)) for k, v in samples.items()}
    reg = trees.fit_gbrt(np.array(x), np.array(y), seed=seed)
    table = {"lut": lut, "regressor": trees.to_json(reg, FEATURES), "kernels": kernels, "fusion": fusion,
             "floor_ms_per_mmac": _throughput_floor(nets, corrected)}
    sums = [sum(lut[b.key] for b in blocks) for _, blocks in nets]
    coef, stats = _overhead(nets, sums, kernels)
    table["overhead"] = {"scale": coef[0], "base_ms": coef[1], "per_kernel_ms": coef[2]}
    table["fit"] = {**stats, "blocks": len(x), "distinct_blocks": len(lut), "networks": len(recs)}
    return table


def _throughput_floor(nets, corrected, min_macs: int = 100_000) -> dict[str, float]:
    """Per block kind, the fastest ms per million MACs measured (its 5th percentile: single blocks'
    attributed times are noisy), so that a regressor's guess for a block larger than any fitted one
    is held above it: trees cannot extrapolate, and no block of that kind ran faster."""
    rates: dict[str, list[float]] = defaultdict(list)
    for (_, blocks), times in zip(nets, corrected):
        for b in blocks:
            if b.macs >= min_macs:
                rates[b.kind].append(times[b.path] / (b.macs / 1e6))
    return {kind: float(np.percentile(r, 5)) for kind, r in rates.items()}


def _kernel_table(nets) -> tuple[dict, dict]:
    """Runtime kernels per block signature (the most common count) and one exported-vs-runtime example."""
    counts, fusion = defaultdict(Counter), {}
    for m, blocks in nets:
        for b in blocks:
            rec = m["blocks"][b.path]
            if "ops" in rec:
                counts[b.signature][len(rec["ops"])] += 1
                fusion.setdefault(b.signature, {"exported": rec.get("exported", []), "runtime": rec["ops"]})
    return {s: c.most_common(1)[0][0] for s, c in counts.items()}, fusion


def _corrected_blocks(nets, kernels, *, renormalize: bool = True) -> list[dict[str, float]]:
    """Per network, each block's profiled time turned into plain-run milliseconds.

    ONNX Runtime's node profiler adds a few µs to every kernel it times. A robust fit over all
    networks of ``total = a · Σ profiled + base + d · kernels`` measures that (``d`` < 0); each
    block then gets ``a · profiled + d · its kernels``. With ``renormalize`` the blocks of a network
    are also rescaled so they add up to its plain timing minus ``base`` (the profiled and the plain
    run happened at different moments of a shared machine's load).
    """
    prof = [{b.path: float(m["blocks"][b.path]["ms"]) for b in blocks} for m, blocks in nets]
    kern = [{b.path: len(m["blocks"][b.path].get("ops") or [0] * int(kernels.get(b.signature, 1)))
             for b in blocks} for m, blocks in nets]
    a = np.array([[sum(p.values()), 1.0, sum(k.values())] for p, k in zip(prof, kern)])
    y = np.array([m["total_ms"] for m, _ in nets])
    scale, base, per_kernel = _robust_lstsq(a, y)
    out = []
    for (m, _), p, k, total in zip(nets, prof, kern, y):
        blocks = {path: max(scale * ms + per_kernel * k[path], 0.25 * scale * ms) for path, ms in p.items()}
        level = (total - base) / sum(blocks.values()) if renormalize and _stable(m) else 1.0
        out.append({path: ms * float(np.clip(level, 0.5, 2.0)) for path, ms in blocks.items()})
    return out


def _stable(record: dict) -> bool:
    """Whether a plain timing is usable as a level: its round medians agreed within UNSTABLE."""
    return float(record.get("spread", 0.0)) <= UNSTABLE


def _robust_lstsq(a: np.ndarray, y: np.ndarray, outlier: float = 0.25) -> np.ndarray:
    """Least squares in relative error; networks off by more than ``outlier`` are refitted without."""
    keep = np.ones(len(y), bool)
    for _ in range(2):
        w = 1.0 / y[keep]
        coef = np.linalg.lstsq(a[keep] * w[:, None], y[keep] * w, rcond=None)[0]
        keep = np.abs(a @ coef / y - 1) <= outlier
        if keep.sum() < a.shape[1] + 1:
            break
    return coef


def _kernels(blocks, kernels: dict) -> int:
    return sum(int(kernels.get(b.signature, 1)) for b in blocks)


def _overhead(nets, sums, kernels) -> tuple[list[float], dict]:
    """measured = scale · Σ block + base + per_kernel · kernels, by relative non-negative least squares."""
    # heavy optional package: imported on first use
    from scipy.optimize import nnls

    a = np.array([[s, 1.0, _kernels(blocks, kernels)] for s, (_, blocks) in zip(sums, nets)])
    y = np.array([m["total_ms"] for m, _ in nets])
    ok = np.array([_stable(m) for m, _ in nets])
    if ok.sum() >= 3:  # disturbed timings (the load changed mid-measurement) do not set the overhead
        a, y = a[ok], y[ok]
    weights = 1.0 / y  # relative error matters: small networks count as much as big ones
    coef, _ = nnls(a * weights[:, None], y * weights)
    rel = (a @ coef - y) / y
    return [float(c) for c in coef], {"in_sample_rmspe": float(np.sqrt(np.mean(rel ** 2))),
                                      "in_sample_within_10pct": float(np.mean(np.abs(rel) <= 0.10))}


def fit_profile(target, *, precisions=None, networks_per_space: int = 40, input_shapes=((1, 28, 28),),
                time_limit_s: float = 540.0, seed: int = 0, out: Path | None = None, progress: bool = False,
                raw_out: Path | None = None, rounds: int = 5, runs: int = 20, cpu: int | None = None,
                group: int | None = 4, cache: Path | None = None) -> Path:
    """Measure sampled networks on this machine and write ``targets/profiles/<target>.json``.

    Args:
        target: a target whose runtime runs on this machine's CPU: ONNX Runtime and OpenVINO (timed per
            kernel) or ExecuTorch (timed whole, :mod:`edgekd.hw.fit_whole`).
        precisions: default ``("int8", "fp32")`` (the target's own first).
        networks_per_space: networks sampled from each search space (before the time limit).
        input_shapes: (C, H, W) shapes to measure; networks are spread over them.
        time_limit_s: measuring stops once this is spent; the fit uses what was measured.
        raw_out: where to also write the raw per-block records (for :func:`fit_records`).
        rounds, runs: interleaved timing rounds per group of networks and calls per round.
        cpu: pin the process to this CPU while timing (Linux).
        group, cache: whole-network runtimes (ExecuTorch): networks timed interleaved per group of
            ``group``, or all in one pool with ``None``; compiled files kept in ``cache``.
    """
    target = load_target(target)
    own = target_precision(target)
    precisions = tuple(precisions or ((own,) + tuple(p for p in ("int8", "fp32") if p != own)))
    if target.backend in WHOLE_NETWORK and target.device == "cpu":  # timed whole: no per-kernel profiler here
        from edgekd.hw.fit_whole import fit_whole_profile

        return fit_whole_profile(target, precisions=precisions, networks_per_space=networks_per_space,
                                 input_shapes=input_shapes, time_limit_s=time_limit_s, seed=seed, out=out,
                                 progress=progress, raw_out=raw_out, rounds=rounds, runs=runs, cpu=cpu,
                                 group=group, cache=cache)
    if target.backend not in FITTABLE or target.device != "cpu":
        raise ConfigError(f"{target.name}: runs {target.backend} on {target.device}; latency profiles are fitted "
                          "only for targets that run on this machine's CPU (an emulator's wall time is not "
                          "the device's latency)")
    started = time.perf_counter()
    records = _measure_all(target, sample_archs(networks_per_space, seed), input_shapes, precisions,
                           started + time_limit_s, progress, {"rounds": rounds, "runs": runs, "cpu": cpu})
    if raw_out is not None:  # the per-block measurements, to refit without measuring again
        write_profile(Path(raw_out), {"target": target.name, "records": records})
    return fit_records(target, records, precisions, out=out, seconds=time.perf_counter() - started, seed=seed)


def fit_records(target, records: list[dict], precisions, *, out: Path | None = None, seconds: float = 0.0,
                seed: int = 0, provenance: dict | None = None, table=None) -> Path:
    """Fit every precision from measurement records and write the profile file with its provenance.

    ``provenance`` overrides recorded fields (e.g. the load average and a note when refitting
    earlier measurements); ``table(records, precision, seed=)`` fits one precision (default
    :func:`fit_table`; whole-network records: :func:`edgekd.hw.fit_whole.fit_linear_table`)."""
    table = table or fit_table
    target = load_target(target)
    data = {"schema": PROFILE_SCHEMA, "target": target.name,
            "provenance": {**_provenance(target, records, seconds, seed), **(provenance or {})},
            "precisions": {p: table(records, p, seed=seed) for p in precisions},
            "fitted_networks": sorted({(arch_key(r["arch"]), tuple(r["input_shape"])) for r in records}),
            "measurements": [{k: r[k] for k in ("arch", "input_shape", "precision", "total_ms", "spread")}
                             for r in records]}
    return write_profile(out or profile_path(target.name, for_writing=True), data)


def write_profile(path: Path, data: dict) -> Path:
    """Provenance pretty-printed for people; tables and trees one line per entry to keep the file small."""
    def dump(value, indent):
        if isinstance(value, dict) and indent < 3:
            items = [f'{" " * (indent + 1) * 2}{json.dumps(k)}: {dump(v, indent + 1)}' for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + " " * indent * 2 + "}"
        return json.dumps(value, separators=(",", ":"), default=_jsonable)

    return write_text(path, dump(data, 0) + "\n")


def _jsonable(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _measure_all(target, archs, input_shapes, precisions, deadline, progress, timing, group: int = 4) -> list[dict]:
    """Networks in groups of ``group``, each group's networks and precisions timed interleaved."""
    records = []
    sym = target.format.activation_symmetric
    jobs = [(arch, tuple(input_shapes[i % len(input_shapes)])) for i, arch in enumerate(archs)]
    for start in range(0, len(jobs), group):
        if time.perf_counter() > deadline:
            log.info("latency fit: time limit reached after %d of %d networks", start, len(jobs))
            break
        batch = [(arch, shape, p) for arch, shape in jobs[start:start + group] for p in precisions]
        records += measure_networks(batch, threads=target.latency.threads, symmetric_activations=sym,
                                    runtime=target.backend, **timing)
        if progress:
            log.info("latency fit: %d/%d networks", min(start + group, len(jobs)), len(jobs))
    return records


def _provenance(target, records: list[dict], seconds: float, seed: int) -> dict:
    env = environment()
    stamps = sorted(r["measured_at"] for r in records if "measured_at" in r)
    return {"machine": {k: env[k] for k in ("cpu", "cpus", "machine", "os", "python")},
            "runtime": target.backend, "versions": {**env["versions"], target.backend: runtime_version(target.backend)},
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "measured": f"{stamps[0]} to {stamps[-1]}" if stamps else None,
            "threads": target.latency.threads, "batch": 1,
            "input_shapes": sorted({tuple(r["input_shape"]) for r in records}),
            "measurements": {"networks": len({arch_key(r["arch"]) + str(r["input_shape"]) for r in records}),
                             "network_timings": len(records), "timed_runs": int(sum(r["runs"] for r in records)),
                             "median_spread": float(np.median([r["spread"] for r in records]))},
            "load_average": list(os.getloadavg()), "fit_seconds": round(seconds, 1), "seed": seed,
            "note": "measured on a shared machine; see median_spread for the run-to-run noise"}
