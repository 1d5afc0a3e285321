"""Per-kernel latency models vs the per-block profile, at real resolutions, on held-out networks.

For each runtime/precision that runs here: sample networks from both search spaces at every input
shape below, compile each as the target does, time them interleaved in groups (5 rounds, so drift
hits all alike), read the kernels the runtime runs (with their own times), fit the per-kernel-type
model on half the networks and score both it and the committed per-block profile on the other half.
Only held-out networks whose own timing repeats within ±5 % are scored; the rest are counted.

    nice -n 10 python bench/latency_kernels.py [--per-shape 24] [--time-limit 900] [--backends onnxruntime-int8 ...]

Writes bench/results/latency_kernels.json and bench/results/latency_kernels.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from edgekd.hw.environment import environment
from edgekd.hw.fit import compile_onnx
from edgekd.hw.interleave import REPEATABLE, profile_many
from edgekd.hw.kernel_model import KernelLatencyModel, fit_kernel_model
from edgekd.hw.kernels import Kernel, runtime_kernels
from edgekd.hw.model import latency_model
from edgekd.hw.sampling import sample_archs

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = [(1, 28, 28), (3, 32, 32), (3, 64, 64), (1, 96, 96), (3, 224, 224)]
BACKENDS = {"onnxruntime-int8": ("onnxruntime", "int8", "x86-cpu-onnxruntime"),
            "onnxruntime-fp32": ("onnxruntime", "fp32", "x86-cpu-onnxruntime"),
            "openvino-cpu-fp32": ("openvino", "fp32", "x86-cpu-openvino"),
            "openvino-cpu-int8": ("openvino", "int8", "x86-cpu-openvino")}
log = logging.getLogger("bench.latency_kernels")


def metrics(pred, meas) -> dict:
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    rel = (pred - meas) / meas
    return {"n": int(len(meas)), "rmspe_pct": float(100 * np.sqrt(np.mean(rel ** 2))),
            "within_10pct": float(np.mean(np.abs(rel) <= 0.10)), "kendall_tau": float(kendalltau(pred, meas)[0])}


def measure(runtime: str, precision: str, jobs: list, deadline: float, group: int = 4) -> list[dict]:
    """Interleaved totals and runtime kernels of each (arch, shape), until ``deadline``."""
    records = []
    for start in range(0, len(jobs), group):
        if time.perf_counter() > deadline:
            log.info("time limit: %d of %d networks measured", start, len(jobs))
            break
        with tempfile.TemporaryDirectory() as tmp:
            files = {}
            for i, (arch, shape) in enumerate(jobs[start:start + group]):
                folder = Path(tmp) / str(i)
                folder.mkdir()
                files[str(i)] = (compile_onnx(arch, shape, precision, folder)[1], shape)
            totals = profile_many(files, runtime=runtime, rounds=5, runs=10)
            for i, (arch, shape) in enumerate(jobs[start:start + group]):
                kernels = runtime_kernels(files[str(i)][0], shape, runtime=runtime, runs=5)
                records.append({"arch": arch, "input_shape": list(shape), "total_ms": totals[str(i)].median_ms,
                                "spread": totals[str(i)].spread, "kernels": [k.to_json() for k in kernels]})
        log.info("%s %s: %d networks", runtime, precision, len(records))
    return records


def evaluate(records: list[dict], target: str, precision: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    train, test = [records[i] for i in order[: len(order) // 2]], [records[i] for i in order[len(order) // 2:]]
    model = KernelLatencyModel(fit_kernel_model(
        [([Kernel.from_json(k) for k in r["kernels"]], r["total_ms"]) for r in train], seed=seed))
    scored = [r for r in test if r["spread"] <= REPEATABLE]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the MAC-scaling warning is expected at unfitted sizes
        blocks = latency_model(target, precision)
        block_pred = [blocks.predict_ms(r["arch"], tuple(r["input_shape"])) for r in scored]
    kernel_pred = [model.predict_kernels_ms([Kernel.from_json(k) for k in r["kernels"]]) for r in scored]
    meas = [r["total_ms"] for r in scored]
    spreads = [r["spread"] for r in test]
    return {"networks": len(records), "train": len(train), "held_out": len(test), "scored": len(scored),
            "excluded_noisy": len(test) - len(scored),
            "noise_floor": {"median_spread": float(np.median(spreads)), "p90_spread": float(np.percentile(spreads, 90))},
            "kernel_model": metrics(kernel_pred, meas) if len(scored) > 2 else None,
            "block_profile": metrics(block_pred, meas) if len(scored) > 2 else None,
            "per_shape": {str(s): metrics([p for p, r in zip(kernel_pred, scored) if tuple(r["input_shape"]) == s],
                                          [m for m, r in zip(meas, scored) if tuple(r["input_shape"]) == s])
                          for s in SHAPES if sum(tuple(r["input_shape"]) == s for r in scored) > 2},
            "points": [{"shape": r["input_shape"], "measured": m, "kernel": k, "block": b}
                       for r, m, k, b in zip(scored, meas, kernel_pred, block_pred)]}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, r in results.items() if r.get("points")]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.5 * max(1, len(names)), 4.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        pts = results[name]["points"]
        meas = [p["measured"] for p in pts]
        ax.loglog(meas, [p["block"] for p in pts], "x", alpha=0.5, label="per-block profile")
        ax.loglog(meas, [p["kernel"] for p in pts], "o", alpha=0.6, label="per-kernel model")
        lo, hi = min(meas) * 0.7, max(meas) * 1.4
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="grey", alpha=0.2, label="±10 %")
        ax.set(title=name, xlabel="measured ms (batch 1)", ylabel="predicted ms")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-shape", type=int, default=24, help="networks per input shape (both spaces)")
    parser.add_argument("--time-limit", type=float, default=900.0, help="seconds of measuring per backend")
    parser.add_argument("--backends", nargs="*", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS / "latency_kernels.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    jobs = [(arch, shape) for k, shape in enumerate(SHAPES)
            for arch in sample_archs(max(1, args.per_shape // 2), args.seed + k)]
    jobs = [jobs[i] for i in np.random.default_rng(args.seed).permutation(len(jobs))]  # shapes mixed in groups
    results = {}
    for name in args.backends:
        runtime, precision, target = BACKENDS[name]
        records = measure(runtime, precision, jobs, time.perf_counter() + args.time_limit)
        results[name] = evaluate(records, target, precision, args.seed) if len(records) >= 8 else {"networks": len(records)}
        summary = {k: results[name].get(k) for k in ("scored", "excluded_noisy", "noise_floor", "kernel_model",
                                                       "block_profile")}
        print(name, json.dumps(summary, indent=None, default=float))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    env = environment()
    payload = {"command": "python bench/latency_kernels.py " + " ".join(
        f"--{k.replace('_', '-')} {v if not isinstance(v, list) else ' '.join(v)}" for k, v in vars(args).items()
        if k != "out"), "machine": {k: env[k] for k in ("cpu", "cpus")}, "versions": env["versions"],
        "shapes": [list(s) for s in SHAPES], "results": results}
    args.out.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    plot(results, args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
